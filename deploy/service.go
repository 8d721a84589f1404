package deploy

import (
	"fmt"
	"os"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Service is what a definition of the control plane's Cloud Run service
// says, in the terms both forms share.
type Service struct {
	// MinInstances and MaxInstances bound the instances; -1 if unset.
	MinInstances, MaxInstances int
	// TimeoutSeconds is the request timeout; 0 if unset.
	TimeoutSeconds int
	// Concurrency is the requests one instance serves at once; 0 if unset.
	Concurrency int
	// SessionAffinity routes a client's requests to one instance.
	SessionAffinity bool
	// CPUAlwaysAllocated keeps CPU between requests.
	CPUAlwaysAllocated bool
	// Port is the container port; 0 if unset.
	Port int
	// Env is the container's environment, in order.
	Env []Env
}

// Env is one environment variable of the service's container.
type Env struct {
	Name string
	// Value is the literal value; empty unless Literal.
	Value string
	// Literal says Value is fixed in the definition (not computed from
	// other resources, not a placeholder's result).
	Literal bool
	// FromSecret says the value is read from Secret Manager.
	FromSecret bool
}

// Lookup returns the variable called name.
func (s *Service) Lookup(name string) (Env, bool) {
	for _, e := range s.Env {
		if e.Name == name {
			return e, true
		}
	}
	return Env{}, false
}

// knative is the part of a Knative serving v1 Service that Cloud Run reads
// and Sockerless sets.
type knative struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				ContainerConcurrency int `yaml:"containerConcurrency"`
				TimeoutSeconds       int `yaml:"timeoutSeconds"`
				Containers           []struct {
					Ports []struct {
						ContainerPort int `yaml:"containerPort"`
					} `yaml:"ports"`
					Env []struct {
						Name      string  `yaml:"name"`
						Value     *string `yaml:"value"`
						ValueFrom *struct {
							SecretKeyRef *struct {
								Name string `yaml:"name"`
								Key  string `yaml:"key"`
							} `yaml:"secretKeyRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// ReadKnativeService reads a Cloud Run service definition in Knative form
// (deploy/cloudrun-service.yaml). Values holding ${PLACEHOLDER}s are not
// literal.
func ReadKnativeService(path string) (*Service, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read service definition: %w", err)
	}
	var k knative
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if k.APIVersion != "serving.knative.dev/v1" || k.Kind != "Service" {
		return nil, fmt.Errorf("%s: want a serving.knative.dev/v1 Service, got %s %s", path, k.APIVersion, k.Kind)
	}
	tmpl := k.Spec.Template
	if len(tmpl.Spec.Containers) != 1 {
		return nil, fmt.Errorf("%s: want one container, got %d", path, len(tmpl.Spec.Containers))
	}
	ann := tmpl.Metadata.Annotations
	s := &Service{
		MinInstances:       intOr(ann["autoscaling.knative.dev/minScale"], -1),
		MaxInstances:       intOr(ann["autoscaling.knative.dev/maxScale"], -1),
		TimeoutSeconds:     tmpl.Spec.TimeoutSeconds,
		Concurrency:        tmpl.Spec.ContainerConcurrency,
		SessionAffinity:    ann["run.googleapis.com/sessionAffinity"] == "true",
		CPUAlwaysAllocated: ann["run.googleapis.com/cpu-throttling"] == "false",
	}
	c := tmpl.Spec.Containers[0]
	if len(c.Ports) > 0 {
		s.Port = c.Ports[0].ContainerPort
	}
	for _, e := range c.Env {
		env := Env{Name: e.Name}
		switch {
		case e.Value != nil:
			env.Value = *e.Value
			env.Literal = !hasPlaceholder(env.Value)
			if !env.Literal {
				env.Value = ""
			}
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env.FromSecret = true
		default:
			return nil, fmt.Errorf("%s: env %s has neither a value nor a secret", path, e.Name)
		}
		s.Env = append(s.Env, env)
	}
	return s, nil
}

func intOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}
