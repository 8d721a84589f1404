package auth_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
	"google.golang.org/api/option"
)

// localKeys is a Google-style signing key set served without the network:
// the validator's HTTP client gets it for any URL.
type localKeys struct {
	key *rsa.PrivateKey
	kid string
}

func newLocalKeys(t *testing.T) *localKeys {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &localKeys{key: k, kid: "test-key-1"}
}

func (l *localKeys) RoundTrip(r *http.Request) (*http.Response, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	jwks := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": l.kid,
		"n": b64(l.key.N.Bytes()), "e": b64(big.NewInt(int64(l.key.E)).Bytes()),
	}}}
	w := httptest.NewRecorder()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=3600")
	_ = json.NewEncoder(w).Encode(jwks)
	return w.Result(), nil
}

// sign makes an RS256 ID token with claims, signed by key.
func sign(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := b64(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid}) + "." + b64(claims)
	sum := sha256.Sum256([]byte(head))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return head + "." + base64.RawURLEncoding.EncodeToString(sig)
}

const audience = "https://sockerless-abc123-uc.a.run.app"

func claims(email string, mod func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": "https://accounts.google.com", "aud": audience, "sub": "1234567890",
		"email": email, "email_verified": true,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestGoogleIDTokens(t *testing.T) {
	keys := newLocalKeys(t)
	v, err := auth.NewGoogleVerifier(t.Context(), audience, option.WithHTTPClient(&http.Client{Transport: keys}))
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutMember(t.Context(), &auth.Member{Principal: "alice@example.com", Namespace: "alice", Role: auth.RoleMember}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutMember(t.Context(), &auth.Member{Principal: "ci@proj.iam.gserviceaccount.com", Member: "ci", Namespace: "ci", Role: auth.RoleMember}); err != nil {
		t.Fatal(err)
	}
	a := auth.New(auth.Config{Store: st, IDTokens: v})
	other, _ := rsa.GenerateKey(rand.Reader, 2048)

	t.Run("a member's token names her namespace", func(t *testing.T) {
		id, err := a.Identify(t.Context(), sign(t, keys.key, keys.kid, claims("Alice@Example.com", nil)))
		if err != nil || id.Namespace != "alice" || id.Member != "alice@example.com" || id.Admin() {
			t.Fatalf("identity %+v, %v", id, err)
		}
	})
	t.Run("a workload identity (service account) maps to its member", func(t *testing.T) {
		id, err := a.Identify(t.Context(), sign(t, keys.key, keys.kid, claims("ci@proj.iam.gserviceaccount.com", nil)))
		if err != nil || id.Namespace != "ci" || id.Member != "ci" {
			t.Fatalf("identity %+v, %v", id, err)
		}
	})
	for name, tok := range map[string]string{
		"another audience":         sign(t, keys.key, keys.kid, claims("alice@example.com", func(c map[string]any) { c["aud"] = "https://elsewhere.example" })),
		"expired":                  sign(t, keys.key, keys.kid, claims("alice@example.com", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })),
		"not issued by Google":     sign(t, keys.key, keys.kid, claims("alice@example.com", func(c map[string]any) { c["iss"] = "https://evil.example" })),
		"unverified email":         sign(t, keys.key, keys.kid, claims("alice@example.com", func(c map[string]any) { c["email_verified"] = false })),
		"signed by another key":    sign(t, other, keys.kid, claims("alice@example.com", nil)),
		"an identity not a member": sign(t, keys.key, keys.kid, claims("mallory@example.com", nil)),
		"garbage with two dots":    "a.b.c",
	} {
		t.Run(name+" is refused", func(t *testing.T) {
			if id, err := a.Identify(t.Context(), tok); err != auth.ErrUnauthorized {
				t.Fatalf("identity %+v, err %v; want ErrUnauthorized", id, err)
			}
		})
	}
	t.Run("without a verifier ID tokens are refused", func(t *testing.T) {
		plain := auth.New(auth.Config{Store: st})
		if _, err := plain.Identify(t.Context(), sign(t, keys.key, keys.kid, claims("alice@example.com", nil))); err != auth.ErrUnauthorized {
			t.Fatalf("err %v", err)
		}
	})

}
