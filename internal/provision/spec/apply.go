package spec

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/run"
)

// ErrNoService is returned for a resource action on a stack whose service
// was never created.
var ErrNoService = errors.New("the service has no model yet: run create-service first")

// Actions the provisioning program understands.
const (
	ActionCreateService = "create-service"
	ActionUpdateService = "update-service"
	ActionAddBucket     = "add-s3-bucket"
	ActionAddQueue      = "add-sqs-queue"
	ActionAddTopic      = "add-sns-topic"
	ActionAddTable      = "add-dynamodb-table"
	ActionAddDatabase   = "add-database"
	ActionAddSecret     = "add-secret"
	ActionAddCache      = "add-cache"
	ActionRemove        = "remove-resource"
)

// Actions lists every supported action id.
var Actions = []string{
	ActionCreateService, ActionUpdateService, ActionAddBucket, ActionAddQueue, ActionAddTopic,
	ActionAddTable, ActionAddDatabase, ActionAddSecret, ActionAddCache, ActionRemove,
}

// Apply returns the model after the request: prev (nil before the service
// exists) changed by the request's action. prev is not modified. Adding a
// resource whose name exists updates it, so a repeated run changes nothing.
func Apply(prev *Service, req run.PipelineRequest) (*Service, error) {
	in := inputs(req.Inputs)
	if err := in.sameStack(req.Stack); err != nil {
		return nil, err
	}
	var s Service
	switch {
	case prev != nil:
		s = clone(*prev)
	case req.Action != ActionCreateService:
		return nil, fmt.Errorf("action %s on %s: %w", req.Action, req.Stack.Key(), ErrNoService)
	}
	if prev != nil && (prev.Name != req.Stack.Service || prev.Tenant != req.Stack.Tenant || prev.Environment != req.Stack.Environment) {
		return nil, fmt.Errorf("model of %s-%s-%s does not belong to stack %s", prev.Tenant, prev.Environment, prev.Name, req.Stack.Key())
	}
	switch req.Action {
	case ActionCreateService, ActionUpdateService:
		if err := s.applyService(in, req); err != nil {
			return nil, err
		}
	case ActionAddBucket:
		s.Buckets = upsert(s.Buckets, Bucket{
			Name: in.str("bucketName", ""), Versioning: in.boolean("versioning", false),
			RetentionDays: in.integer("retentionDays", 0), Public: in.boolean("public", false),
		}, func(b Bucket) string { return b.Name })
	case ActionAddQueue:
		s.Queues = upsert(s.Queues, Queue{
			Name: in.str("queueName", ""), FIFO: in.boolean("fifo", false),
			VisibilityTimeoutSeconds: in.integer("visibilityTimeoutSeconds", 30),
			MaxReceiveCount:          in.integer("maxReceiveCount", 5),
		}, func(q Queue) string { return q.Name })
	case ActionAddTopic:
		s.Topics = upsert(s.Topics, Topic{Name: in.str("topicName", ""), FIFO: in.boolean("fifo", false)},
			func(t Topic) string { return t.Name })
	case ActionAddTable:
		s.Tables = upsert(s.Tables, Table{
			Name: in.str("tableName", ""), HashKey: in.str("hashKey", "id"), RangeKey: in.str("rangeKey", ""),
		}, func(t Table) string { return t.Name })
	case ActionAddDatabase:
		s.Databases = upsert(s.Databases, Database{
			Name: in.str("databaseName", ""), Engine: in.str("engine", "aurora-postgresql"),
			InstanceClass: in.str("instanceClass", ""), Public: in.boolean("public", false),
		}, func(d Database) string { return d.Name })
	case ActionAddSecret:
		s.Secrets = upsert(s.Secrets, Secret{Name: in.str("secretName", ""), Description: in.str("description", "")},
			func(x Secret) string { return x.Name })
	case ActionAddCache:
		s.Cache = true
	case ActionRemove:
		if err := s.remove(in.str("kind", ""), in.str("name", "")); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown action %q (supported: %s)", req.Action, strings.Join(Actions, ", "))
	}
	if in.err != nil {
		return nil, fmt.Errorf("action %s: %w", req.Action, in.err)
	}
	return &s, nil
}

func (s *Service) applyService(in *inputMap, req run.PipelineRequest) error {
	s.Name, s.Tenant, s.Environment = req.Stack.Service, req.Stack.Tenant, req.Stack.Environment
	if name := in.str("name", s.Name); name != s.Name {
		return fmt.Errorf("input name %q does not match the stack's service %q", name, s.Name)
	}
	team := req.Team
	if team == "" {
		team = s.Team
	}
	s.Team = in.str("team", team)
	s.Language = in.str("language", s.Language)
	s.Tenancy = platform.Tenancy(in.str("tenancy", string(s.Tenancy)))
	s.Cache = in.boolean("cache", s.Cache)
	w := &s.Workload
	w.Kind = in.str("workload", or(w.Kind, Deployment))
	w.Replicas = in.integer("replicas", w.Replicas)
	w.Image = in.str("image", w.Image)
	w.Port = in.integer("port", orInt(w.Port, 8080))
	w.HealthPath = in.str("healthPath", or(w.HealthPath, "/healthz"))
	w.Schedule = in.str("schedule", w.Schedule)
	w.StorageGi = in.integer("storageGi", orInt(w.StorageGi, 10))
	if s.Team == "" {
		return errors.New("create-service needs a team")
	}
	return nil
}

func (s *Service) remove(kind, name string) error {
	n := 0
	drop := func(got string) bool {
		if got == name {
			n++
			return true
		}
		return false
	}
	switch kind {
	case "bucket":
		s.Buckets = slices.DeleteFunc(s.Buckets, func(b Bucket) bool { return drop(b.Name) })
	case "queue":
		s.Queues = slices.DeleteFunc(s.Queues, func(q Queue) bool { return drop(q.Name) })
	case "topic":
		s.Topics = slices.DeleteFunc(s.Topics, func(t Topic) bool { return drop(t.Name) })
	case "table":
		s.Tables = slices.DeleteFunc(s.Tables, func(t Table) bool { return drop(t.Name) })
	case "database":
		s.Databases = slices.DeleteFunc(s.Databases, func(d Database) bool { return drop(d.Name) })
	case "secret":
		s.Secrets = slices.DeleteFunc(s.Secrets, func(x Secret) bool { return drop(x.Name) })
	case "cache":
		n, s.Cache = 1, false
	default:
		return fmt.Errorf("remove-resource: unknown kind %q", kind)
	}
	if n == 0 {
		return fmt.Errorf("remove-resource: no %s named %q", kind, name)
	}
	return nil
}

func clone(s Service) Service {
	s.Buckets, s.Queues, s.Topics = slices.Clone(s.Buckets), slices.Clone(s.Queues), slices.Clone(s.Topics)
	s.Tables, s.Databases, s.Secrets = slices.Clone(s.Tables), slices.Clone(s.Databases), slices.Clone(s.Secrets)
	return s
}

func upsert[T any](list []T, item T, name func(T) string) []T {
	if i := slices.IndexFunc(list, func(x T) bool { return name(x) == name(item) }); i >= 0 {
		list[i] = item
		return list
	}
	return append(list, item)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// inputMap reads portal inputs leniently: JSON numbers arrive as float64,
// and some portals send every value as a string. The first bad value is
// kept in err, so Apply reports it once.
type inputMap struct {
	m   map[string]any
	err error
}

func inputs(m map[string]any) *inputMap { return &inputMap{m: m} }

func (in *inputMap) fail(key string, v any, want string) {
	if in.err == nil {
		in.err = fmt.Errorf("input %s: %v is not %s", key, v, want)
	}
}

func (in *inputMap) str(key, def string) string {
	v, ok := in.m[key]
	if !ok || v == nil {
		return def
	}
	s, ok := v.(string)
	if !ok {
		in.fail(key, v, "a string")
	}
	return s
}

func (in *inputMap) integer(key string, def int) int {
	switch v := in.m[key].(type) {
	case nil:
		return def
	case float64:
		if v != float64(int(v)) {
			in.fail(key, v, "a whole number")
		}
		return int(v)
	case int:
		return v
	case string:
		n, err := strconv.Atoi(v)
		if err != nil {
			in.fail(key, v, "a whole number")
		}
		return n
	default:
		in.fail(key, v, "a whole number")
		return def
	}
}

func (in *inputMap) boolean(key string, def bool) bool {
	switch v := in.m[key].(type) {
	case nil:
		return def
	case bool:
		return v
	case string:
		b, err := strconv.ParseBool(v)
		if err != nil {
			in.fail(key, v, "true or false")
		}
		return b
	default:
		in.fail(key, v, "true or false")
		return def
	}
}

// sameStack refuses inputs that name another tenant or environment than
// the stack paved chose, so a request cannot reach into another stack.
func (in *inputMap) sameStack(st run.Stack) error {
	if st.Tenant == "" || st.Environment == "" || st.Service == "" {
		return fmt.Errorf("request names no complete stack (tenant %q, environment %q, service %q)", st.Tenant, st.Environment, st.Service)
	}
	for key, want := range map[string]string{"tenant": st.Tenant, "environment": st.Environment} {
		if got := in.str(key, want); got != want {
			return fmt.Errorf("input %s %q does not match the stack's %s %q", key, got, key, want)
		}
	}
	return nil
}
