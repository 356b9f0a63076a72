package rules

import (
	"maps"
	"slices"
)

// Resource is one registered resource as the engine saw it: plain values,
// every output resolved.
type Resource struct {
	Type    Type
	Name    string
	Inputs  map[string]any
	Outputs map[string]any
}

// Type is a provider resource type token, as the engine (and the mock
// monitor) sees it. The components never name these: they register through
// the typed SDKs, which send the tokens. The rules need them to tell a
// bucket from a queue; TestResourceNames (program) proves that each token
// here is one the typed SDKs register, and the ownership-tags rule reports
// any registered token missing here.
type Type string

// AWS type tokens (pulumi-aws v6 schema).
const (
	KMSKey   Type = "aws:kms/key:Key"
	KMSAlias Type = "aws:kms/alias:Alias"

	SQSQueue Type = "aws:sqs/queue:Queue"
	SNSTopic Type = "aws:sns/topic:Topic"

	S3Bucket             Type = "aws:s3/bucketV2:BucketV2"
	S3Encryption         Type = "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
	S3PublicAccessBlock  Type = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
	S3OwnershipControls  Type = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
	S3Versioning         Type = "aws:s3/bucketVersioningV2:BucketVersioningV2"
	S3Lifecycle          Type = "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"
	S3BucketPolicy       Type = "aws:s3/bucketPolicy:BucketPolicy"
	DynamoDBTable        Type = "aws:dynamodb/table:Table"
	RDSCluster           Type = "aws:rds/cluster:Cluster"
	RDSClusterInstance   Type = "aws:rds/clusterInstance:ClusterInstance"
	EC2SecurityGroup     Type = "aws:ec2/securityGroup:SecurityGroup"
	IAMRole              Type = "aws:iam/role:Role"
	IAMRolePolicy        Type = "aws:iam/rolePolicy:RolePolicy"
	SecretsManagerSecret Type = "aws:secretsmanager/secret:Secret"
	ECRRepository        Type = "aws:ecr/repository:Repository"
	ECRLifecyclePolicy   Type = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
)

// Kubernetes type tokens (pulumi-kubernetes v4 schema: group/version:Kind).
const (
	K8sNamespace      Type = "kubernetes:core/v1:Namespace"
	K8sServiceAccount Type = "kubernetes:core/v1:ServiceAccount"
	K8sService        Type = "kubernetes:core/v1:Service"
	K8sDeployment     Type = "kubernetes:apps/v1:Deployment"
	K8sStatefulSet    Type = "kubernetes:apps/v1:StatefulSet"
	K8sCronJob        Type = "kubernetes:batch/v1:CronJob"
	K8sIngress        Type = "kubernetes:networking.k8s.io/v1:Ingress"
	K8sNetworkPolicy  Type = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
	K8sHPA            Type = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
	K8sPDB            Type = "kubernetes:policy/v1:PodDisruptionBudget"
)

// Types lists every known type, for tests that prove each is registered.
func Types() []Type { return slices.Sorted(maps.Keys(tagging)) }

// Tagging says how a type carries the cost and ownership tags.
type Tagging int

// How types carry tags.
const (
	// Untagged types are sub-resources that AWS does not let carry tags
	// (a bucket's encryption configuration, an inline role policy); they
	// belong to a tagged parent.
	Untagged Tagging = iota
	// AWSTags is the "tags" map.
	AWSTags
	// K8sLabels is "metadata.labels".
	K8sLabels
)

// tagging lists every type the rules know. A type missing here is a
// programming error the ownership-tags rule reports, so adding a type forces
// a decision about its tags. res.New tags whatever the SDK lets carry tags,
// so an AWS type listed Untagged that arrives tagged is reported too: the
// list cannot drift from the SDK.
var tagging = map[Type]Tagging{
	KMSKey: AWSTags, KMSAlias: Untagged,
	SQSQueue: AWSTags, SNSTopic: AWSTags,
	S3Bucket: AWSTags, S3Encryption: Untagged, S3PublicAccessBlock: Untagged, S3OwnershipControls: Untagged,
	S3Versioning: Untagged, S3Lifecycle: Untagged, S3BucketPolicy: Untagged,
	DynamoDBTable: AWSTags, RDSCluster: AWSTags, RDSClusterInstance: AWSTags, EC2SecurityGroup: AWSTags,
	IAMRole: AWSTags, IAMRolePolicy: Untagged, SecretsManagerSecret: AWSTags,
	ECRRepository: AWSTags, ECRLifecyclePolicy: Untagged,
	K8sNamespace: K8sLabels, K8sServiceAccount: K8sLabels, K8sService: K8sLabels, K8sDeployment: K8sLabels,
	K8sStatefulSet: K8sLabels, K8sCronJob: K8sLabels, K8sIngress: K8sLabels, K8sNetworkPolicy: K8sLabels,
	K8sHPA: K8sLabels, K8sPDB: K8sLabels,
}

// TaggingOf says how t carries tags; ok is false for a type the rules do
// not know.
func TaggingOf(t Type) (tg Tagging, ok bool) {
	tg, ok = tagging[t]
	return tg, ok
}
