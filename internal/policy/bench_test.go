package policy_test

import (
	"context"
	"testing"

	"github.com/paved-idp/paved/internal/policy"
)

// BenchmarkDecide is one policy decision with the shipped Rego (prepared
// once, as paved does at start): the cases a webhook meets most, an allowed
// dev change and a refused production change.
func BenchmarkDecide(b *testing.B) {
	eng, err := policy.New(context.Background(), "../../actions/policy", policy.Data{
		Environments: []policy.Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod", Production: true}},
		Tenants:      []string{"acme", "globex"},
	})
	if err != nil {
		b.Fatal(err)
	}
	<-eng.Settled() // measure the form paved decides with once started
	in := func(env string, teams ...string) policy.Input {
		return policy.Input{
			Action: "add-s3-bucket", Operation: "DAY-2",
			Inputs: map[string]any{"tenant": "acme", "environment": env, "bucketName": "receipts", "versioning": true, "retentionDays": float64(30)},
			User:   policy.User{Email: "dana@acme.example", Teams: teams},
			Entity: policy.Entity{Identifier: "checkout", Blueprint: "service", Team: []string{"payments"}},
			Tenant: "acme", Environment: env, Service: "checkout", Team: "payments",
		}
	}
	for _, c := range []struct {
		name  string
		in    policy.Input
		allow bool
	}{
		{"allow_dev", in("dev", "payments"), true},
		{"deny_prod_other_team", in("prod", "web"), false},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				d, err := eng.Decide(ctx, c.in)
				if err != nil || d.Allow != c.allow {
					b.Fatalf("decide: %+v, %v", d, err)
				}
			}
		})
	}
}
