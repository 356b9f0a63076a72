// Package cost estimates what a stack costs a month from its Pulumi
// preview and a price table shipped with paved (prices.yaml): the fixed
// part of each golden-path resource — instance hours by instance class,
// provisioned capacity, keys, secrets, the CPU and memory a workload's pods
// request — not what use adds (requests, storage, transfer), which no
// preview can know. A resource the table cannot price is named in the
// estimate, never silently counted as free.
package cost

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/paved-idp/paved/internal/run"
)

//go:embed prices.yaml
var shipped []byte

// Table is a price table: the prices of resource kinds, by Pulumi type.
type Table struct {
	Currency      string  `yaml:"currency"`
	Region        string  `yaml:"region"`
	HoursPerMonth float64 `yaml:"hoursPerMonth"`
	Source        string  `yaml:"source"`
	AsOf          string  `yaml:"asOf"`
	// Free kinds cost nothing of their own (IAM roles, security groups);
	// UsageOnly kinds are charged only by use (queues, topics, buckets).
	Free      []string        `yaml:"free"`
	UsageOnly []string        `yaml:"usageOnly"`
	Kinds     map[string]Kind `yaml:"kinds"`
}

// Kind is how one resource type is priced: a flat monthly or hourly price,
// an hourly price chosen by an input (an instance class), provisioned
// capacity, or pods.
type Kind struct {
	Monthly float64 `yaml:"monthly"`
	Hourly  float64 `yaml:"hourly"`
	// By names the input whose value selects the hourly price in Prices.
	By     string             `yaml:"by"`
	Prices map[string]float64 `yaml:"prices"`
	// Capacity prices DynamoDB's provisioned mode, per capacity unit-hour
	// of readCapacity and writeCapacity; on demand is use only.
	Capacity *struct {
		ReadUnitHour  float64 `yaml:"readUnitHour"`
		WriteUnitHour float64 `yaml:"writeUnitHour"`
	} `yaml:"capacity"`
	// Pods prices a Kubernetes workload by what its pods request, per
	// replica: vCPU-hours and GiB-hours.
	Pods *struct {
		VCPUHour float64 `yaml:"vcpuHour"`
		GiBHour  float64 `yaml:"gibHour"`
	} `yaml:"pods"`
}

// Shipped is the price table in this build of paved.
func Shipped() (*Table, error) { return Parse(shipped) }

// Parse reads a price table.
func Parse(b []byte) (*Table, error) {
	var t Table
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("read the price table: %w", err)
	}
	if t.Currency == "" || t.HoursPerMonth <= 0 || t.Source == "" || t.AsOf == "" {
		return nil, errors.New("read the price table: currency, hoursPerMonth, source and asOf are required")
	}
	return &t, nil
}

// Name says which prices these are, for the estimate.
func (t *Table) Name() string {
	return fmt.Sprintf("%s on-demand, %s (%s)", t.Region, t.AsOf, t.Source)
}

// Resource is one resource of a stack as its preview shows it.
type Resource struct {
	Type, Name string
	Inputs     map[string]any
}

// Estimate prices the stack before and after a change.
func (t *Table) Estimate(before, after []Resource) run.Cost {
	c := run.Cost{Currency: t.Currency, Prices: t.Name()}
	c.Before, _ = t.total(before)
	var unpriced []string
	c.Monthly, unpriced = t.total(after)
	c.Before, c.Monthly = round(c.Before), round(c.Monthly)
	c.Delta = round(c.Monthly - c.Before)
	c.Unpriced = unpriced
	return c
}

func round(v float64) float64 { return math.Round(v*100) / 100 }

// total is what rs cost a month, and which of them had no price.
func (t *Table) total(rs []Resource) (float64, []string) {
	// A workload scaled by an autoscaler has no replicas of its own: the
	// autoscaler's minimum is what runs at least.
	minReplicas := map[string]float64{}
	for _, r := range rs {
		if strings.HasPrefix(r.Type, "kubernetes:autoscaling/") {
			if target, ok := lookup(r.Inputs, "spec", "scaleTargetRef", "name").(string); ok {
				if n, ok := number(lookup(r.Inputs, "spec", "minReplicas")); ok {
					minReplicas[target] = n
				} else {
					minReplicas[target] = 1 // Kubernetes' default
				}
			}
		}
	}
	sum := 0.0
	var unpriced []string
	for _, r := range rs {
		m, why := t.monthly(r, minReplicas)
		if why != "" {
			unpriced = append(unpriced, r.Type+" "+r.Name+": "+why)
			continue
		}
		sum += m
	}
	slices.Sort(unpriced)
	return sum, unpriced
}

// monthly is r's monthly price, or why it has none.
func (t *Table) monthly(r Resource, minReplicas map[string]float64) (float64, string) {
	if slices.Contains(t.Free, r.Type) || slices.Contains(t.UsageOnly, r.Type) || strings.HasPrefix(r.Type, "pulumi:") {
		return 0, ""
	}
	k, ok := t.Kinds[r.Type]
	if !ok {
		return 0, "not in the price table"
	}
	h := t.HoursPerMonth
	switch {
	case k.By != "":
		v, _ := r.Inputs[k.By].(string)
		p, ok := k.Prices[v]
		if !ok {
			return 0, fmt.Sprintf("%s %q not in the price table", k.By, v)
		}
		return p * h, ""
	case k.Capacity != nil:
		if mode, _ := r.Inputs["billingMode"].(string); mode != "PROVISIONED" {
			return 0, "" // on demand: use only
		}
		read, _ := number(r.Inputs["readCapacity"])
		write, _ := number(r.Inputs["writeCapacity"])
		return (read*k.Capacity.ReadUnitHour + write*k.Capacity.WriteUnitHour) * h, ""
	case k.Pods != nil:
		return t.pods(r, k, minReplicas)
	}
	return k.Monthly + k.Hourly*h, ""
}

// pods prices a workload: replicas (or its autoscaler's minimum) times
// what each pod's containers request.
func (t *Table) pods(r Resource, k Kind, minReplicas map[string]float64) (float64, string) {
	replicas, ok := number(lookup(r.Inputs, "spec", "replicas"))
	if !ok {
		name, _ := lookup(r.Inputs, "metadata", "name").(string)
		if replicas, ok = minReplicas[name]; !ok {
			replicas = 1 // Kubernetes' default
		}
	}
	containers, _ := lookup(r.Inputs, "spec", "template", "spec", "containers").([]any)
	cpu, mem := 0.0, 0.0
	for _, c := range containers {
		req, _ := lookup(c, "resources", "requests").(map[string]any)
		if req == nil {
			return 0, "a container requests no cpu and memory"
		}
		v, err := quantity(req["cpu"])
		if err != nil {
			return 0, "cpu request: " + err.Error()
		}
		cpu += v
		if v, err = quantity(req["memory"]); err != nil {
			return 0, "memory request: " + err.Error()
		}
		mem += v / (1 << 30)
	}
	return replicas * (cpu*k.Pods.VCPUHour + mem*k.Pods.GiBHour) * t.HoursPerMonth, ""
}

func lookup(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// number reads a JSON number as the preview decoder leaves it.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case interface{ Float64() (float64, error) }:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// quantity reads a Kubernetes resource quantity: "250m", "0.5", "2",
// "512Mi", "1Gi", "1G", a plain number.
func quantity(v any) (float64, error) {
	if n, ok := number(v); ok {
		return n, nil
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return 0, errors.New("missing")
	}
	for _, u := range []struct {
		suffix string
		factor float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"m", 1e-3}} {
		if strings.HasSuffix(s, u.suffix) {
			f, err := strconv.ParseFloat(strings.TrimSuffix(s, u.suffix), 64)
			if err != nil {
				return 0, fmt.Errorf("%q is not a quantity", s)
			}
			return f * u.factor, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a quantity", s)
	}
	return f, nil
}
