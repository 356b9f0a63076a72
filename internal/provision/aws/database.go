package aws

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/spec"
)

// Database is an Aurora cluster.
type Database struct {
	Arn, Endpoint, ReaderEndpoint pulumi.StringOutput
	Port                          int
	Grant                         Grant
}

// NewDatabase creates an Aurora cluster reachable only from the cluster's
// pod network through its own security group, encrypted with the stack's
// key, with the master password managed by RDS in Secrets Manager (never in
// Pulumi state). Applications connect with IAM authentication as the
// database user named after the service. Production gets deletion
// protection, two weeks of backups, a final snapshot and a reader in a
// second availability zone; elsewhere one small instance and one day of
// backups (Aurora's minimum).
func NewDatabase(s res.Scope, key Key, d spec.Database) (*Database, error) {
	t, env := s.Target, s.Target.Environment
	s, c, err := begin(s, "Database", t.Name(d.Name))
	if err != nil {
		return nil, err
	}
	port := spec.DatabasePort(d.Engine)
	sg, err := s.Register(res.EC2SecurityGroup, t.Name(d.Name, "db"), pulumi.Map{
		"name":        pulumi.String(t.Name(d.Name, "db")),
		"description": pulumi.String("paved: " + d.Engine + " for " + t.StackName() + ", from the pod network only"),
		"vpcId":       pulumi.String(env.VPCID),
		"ingress": pulumi.Array{pulumi.Map{
			"description": pulumi.String("pods of cluster " + env.Name),
			"protocol":    pulumi.String("tcp"),
			"fromPort":    pulumi.Int(port), "toPort": pulumi.Int(port),
			"cidrBlocks": pulumi.ToStringArray([]string{env.ClusterCIDR}),
		}},
	})
	if err != nil {
		return nil, err
	}
	props := pulumi.Map{
		"clusterIdentifier":                pulumi.String(t.Name(d.Name)),
		"engine":                           pulumi.String(d.Engine),
		"databaseName":                     pulumi.String(strings.ReplaceAll(d.Name, "-", "_")),
		"masterUsername":                   pulumi.String("paved_admin"),
		"manageMasterUserPassword":         pulumi.Bool(true),
		"masterUserSecretKmsKeyId":         key.Arn,
		"storageEncrypted":                 pulumi.Bool(true),
		"kmsKeyId":                         key.Arn,
		"iamDatabaseAuthenticationEnabled": pulumi.Bool(true),
		"dbSubnetGroupName":                pulumi.String(env.DBSubnetGroup),
		"vpcSecurityGroupIds":              pulumi.StringArray{sg.ID().ToStringOutput()},
		"port":                             pulumi.Int(port),
		"copyTagsToSnapshot":               pulumi.Bool(true),
		"deletionProtection":               pulumi.Bool(t.Production()),
		"backupRetentionPeriod":            pulumi.Int(byEnv(t, 14, 1)),
		"preferredBackupWindow":            pulumi.String("02:00-03:00"),
		"skipFinalSnapshot":                pulumi.Bool(!t.Production()),
		// Production changes wait for the maintenance window.
		"applyImmediately": pulumi.Bool(!t.Production()),
	}
	if t.Production() {
		props["finalSnapshotIdentifier"] = pulumi.String(t.Name(d.Name, "final"))
	}
	cluster, err := s.Register(res.RDSCluster, t.Name(d.Name), props)
	if err != nil {
		return nil, err
	}
	class := d.InstanceClass
	if class == "" {
		class = t.Size.DatabaseClasses[0]
	}
	// Aurora spreads a cluster's instances over the subnet group's zones,
	// so a second instance is a standby in another availability zone.
	for i := range byEnv(t, 2, 1) {
		if _, err := s.Register(res.RDSClusterInstance, t.Name(d.Name, fmt.Sprint(i+1)), pulumi.Map{
			"identifier":              pulumi.String(t.Name(d.Name, fmt.Sprint(i+1))),
			"clusterIdentifier":       cluster.ID().ToStringOutput(),
			"instanceClass":           pulumi.String(class),
			"engine":                  pulumi.String(d.Engine),
			"dbSubnetGroupName":       pulumi.String(env.DBSubnetGroup),
			"publiclyAccessible":      pulumi.Bool(false),
			"autoMinorVersionUpgrade": pulumi.Bool(true),
			"promotionTier":           pulumi.Int(i),
		}); err != nil {
			return nil, err
		}
	}
	user := strings.ReplaceAll(t.Service, "-", "_")
	connect := cluster.ClusterResourceID.ApplyT(func(id string) string {
		return fmt.Sprintf("arn:aws:rds-db:%s:%s:dbuser:%s/%s", t.Region, t.AccountID, id, user)
	}).(pulumi.StringOutput)
	out := &Database{
		Arn: cluster.Arn, Endpoint: cluster.Endpoint, ReaderEndpoint: cluster.ReaderEndpoint, Port: port,
		Grant: Grant{Sid: sid("Database", d.Name), Actions: []string{"rds-db:connect"},
			Resources: []pulumi.StringOutput{connect}},
	}
	return out, end(s, c, pulumi.Map{
		"arn": cluster.Arn, "endpoint": cluster.Endpoint, "readerEndpoint": cluster.ReaderEndpoint,
		"port": pulumi.Int(port), "user": pulumi.String(user),
	})
}
