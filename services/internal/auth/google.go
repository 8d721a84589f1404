package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/api/idtoken"
)

// googleIssuers are the issuers of Google-signed ID tokens.
var googleIssuers = map[string]bool{"https://accounts.google.com": true, "accounts.google.com": true}

// GoogleVerifier checks Google ID tokens (what Cloud Run IAM accepts and
// forwarder --google sends) with google.golang.org/api/idtoken.
type GoogleVerifier struct {
	v        *idtoken.Validator
	audience string
}

// NewGoogleVerifier returns a verifier of ID tokens for audience (the
// service's URL). opts configure the validator's HTTP client, which
// fetches Google's signing keys; tests pass one serving a local key set.
func NewGoogleVerifier(ctx context.Context, audience string, opts ...idtoken.ClientOption) (*GoogleVerifier, error) {
	if audience == "" {
		return nil, errors.New("google identity: no audience (the service's URL)")
	}
	v, err := idtoken.NewValidator(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("google identity: %w", err)
	}
	return &GoogleVerifier{v: v, audience: audience}, nil
}

// Verify checks tok's signature, audience, expiry and issuer and returns
// its verified email, in lower case: a user's, or a service account's (a
// workload identity, a CI job's account).
func (g *GoogleVerifier) Verify(ctx context.Context, tok string) (string, error) {
	p, err := g.v.Validate(ctx, tok, g.audience)
	if err != nil {
		return "", err
	}
	if !googleIssuers[p.Issuer] {
		return "", fmt.Errorf("id token issued by %q, not Google", p.Issuer)
	}
	email, _ := p.Claims["email"].(string)
	verified, _ := p.Claims["email_verified"].(bool)
	if email == "" || !verified {
		return "", errors.New("id token carries no verified email: mint it with the email claim (service accounts: include email)")
	}
	return strings.ToLower(email), nil
}
