package aws

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/rds"
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
	sg, err := res.New(s, ec2.NewSecurityGroup, t.Name(d.Name, "db"), &ec2.SecurityGroupArgs{
		Name:        pulumi.String(t.Name(d.Name, "db")),
		Description: pulumi.String("paved: " + d.Engine + " for " + t.StackName() + ", from the pod network only"),
		VpcId:       pulumi.String(env.VPCID),
		Ingress: ec2.SecurityGroupIngressArray{&ec2.SecurityGroupIngressArgs{
			Description: pulumi.String("pods of cluster " + env.Name),
			Protocol:    pulumi.String("tcp"),
			FromPort:    pulumi.Int(port), ToPort: pulumi.Int(port),
			CidrBlocks: pulumi.ToStringArray([]string{env.ClusterCIDR}),
		}},
	})
	if err != nil {
		return nil, err
	}
	a := &rds.ClusterArgs{
		ClusterIdentifier:                pulumi.String(t.Name(d.Name)),
		Engine:                           pulumi.String(d.Engine),
		DatabaseName:                     pulumi.String(strings.ReplaceAll(d.Name, "-", "_")),
		MasterUsername:                   pulumi.String("paved_admin"),
		ManageMasterUserPassword:         pulumi.Bool(true),
		MasterUserSecretKmsKeyId:         key.Arn,
		StorageEncrypted:                 pulumi.Bool(true),
		KmsKeyId:                         key.Arn,
		IamDatabaseAuthenticationEnabled: pulumi.Bool(true),
		DbSubnetGroupName:                pulumi.String(env.DBSubnetGroup),
		VpcSecurityGroupIds:              pulumi.StringArray{sg.ID().ToStringOutput()},
		Port:                             pulumi.Int(port),
		CopyTagsToSnapshot:               pulumi.Bool(true),
		DeletionProtection:               pulumi.Bool(t.Production()),
		BackupRetentionPeriod:            pulumi.Int(byEnv(t, 14, 1)),
		PreferredBackupWindow:            pulumi.String("02:00-03:00"),
		SkipFinalSnapshot:                pulumi.Bool(!t.Production()),
		// Production changes wait for the maintenance window.
		ApplyImmediately: pulumi.Bool(!t.Production()),
	}
	if t.Production() {
		a.FinalSnapshotIdentifier = pulumi.String(t.Name(d.Name, "final"))
	}
	cluster, err := res.New(s, rds.NewCluster, t.Name(d.Name), a)
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
		if _, err := res.New(s, rds.NewClusterInstance, t.Name(d.Name, fmt.Sprint(i+1)), &rds.ClusterInstanceArgs{
			Identifier:              pulumi.String(t.Name(d.Name, fmt.Sprint(i+1))),
			ClusterIdentifier:       cluster.ID().ToStringOutput(),
			InstanceClass:           pulumi.String(class),
			Engine:                  pulumi.String(d.Engine),
			DbSubnetGroupName:       pulumi.String(env.DBSubnetGroup),
			PubliclyAccessible:      pulumi.Bool(false),
			AutoMinorVersionUpgrade: pulumi.Bool(true),
			PromotionTier:           pulumi.Int(i),
		}); err != nil {
			return nil, err
		}
	}
	user := strings.ReplaceAll(t.Service, "-", "_")
	connect := cluster.ClusterResourceId.ApplyT(func(id string) string {
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
