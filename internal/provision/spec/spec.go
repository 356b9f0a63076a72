// Package spec is the model of one service: everything its stack holds,
// written once and deployed to any environment. A Pulumi program declares
// the whole desired state on every run, so each action does not describe
// "one more bucket" to Pulumi; it changes the model, and the program
// deploys the whole model. The model travels between runs as the stack
// output "pavedModel".
package spec

import (
	"github.com/paved-idp/paved/internal/provision/platform"
)

// Workload kinds.
const (
	Deployment  = "deployment"
	StatefulSet = "statefulset"
	CronJob     = "cronjob"
)

// Service is the model of one service's stack.
type Service struct {
	Name        string           `json:"name"`
	Tenant      string           `json:"tenant"`
	Environment string           `json:"environment"`
	Team        string           `json:"team"`
	Language    string           `json:"language,omitempty"`
	Tenancy     platform.Tenancy `json:"tenancy"`
	Workload    Workload         `json:"workload"`
	Cache       bool             `json:"cache,omitempty"`
	Buckets     []Bucket         `json:"buckets,omitempty"`
	Queues      []Queue          `json:"queues,omitempty"`
	Topics      []Topic          `json:"topics,omitempty"`
	Tables      []Table          `json:"tables,omitempty"`
	Databases   []Database       `json:"databases,omitempty"`
	Secrets     []Secret         `json:"secrets,omitempty"`
}

// Workload is how the service runs on Kubernetes.
type Workload struct {
	Kind string `json:"kind"`
	// Replicas is 0 for "the environment's default".
	Replicas int    `json:"replicas,omitempty"`
	Image    string `json:"image,omitempty"`
	Port     int    `json:"port"`
	// HealthPath is probed for readiness and liveness.
	HealthPath string `json:"healthPath"`
	// Schedule is the cron schedule of a CronJob.
	Schedule string `json:"schedule,omitempty"`
	// StorageGi is the volume size of each StatefulSet replica.
	StorageGi int `json:"storageGi,omitempty"`
}

// Bucket is an S3 bucket.
type Bucket struct {
	Name          string `json:"name"`
	Versioning    bool   `json:"versioning,omitempty"`
	RetentionDays int    `json:"retentionDays,omitempty"`
	// Public is never granted; it is kept so the no-public-s3 rule can
	// refuse a request that asks for it.
	Public bool `json:"public,omitempty"`
}

// Queue is an SQS queue with its dead-letter queue.
type Queue struct {
	Name                     string `json:"name"`
	FIFO                     bool   `json:"fifo,omitempty"`
	VisibilityTimeoutSeconds int    `json:"visibilityTimeoutSeconds"`
	MaxReceiveCount          int    `json:"maxReceiveCount"`
}

// Topic is an SNS topic.
type Topic struct {
	Name string `json:"name"`
	FIFO bool   `json:"fifo,omitempty"`
}

// Table is a DynamoDB table.
type Table struct {
	Name     string `json:"name"`
	HashKey  string `json:"hashKey"`
	RangeKey string `json:"rangeKey,omitempty"`
}

// Database is an Aurora cluster.
type Database struct {
	Name string `json:"name"`
	// Engine is aurora-postgresql or aurora-mysql.
	Engine string `json:"engine"`
	// InstanceClass is empty for "the environment's default".
	InstanceClass string `json:"instanceClass,omitempty"`
	// Public is never granted; see Bucket.Public.
	Public bool `json:"public,omitempty"`
}

// Secret is a Secrets Manager secret whose value the team sets.
type Secret struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// DatabasePort is the port of an Aurora engine.
func DatabasePort(engine string) int {
	if engine == "aurora-mysql" {
		return 3306
	}
	return 5432
}
