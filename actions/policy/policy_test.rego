package paved.policy_test

import data.paved.policy

envs := [
	{"name": "dev", "production": false},
	{"name": "staging", "production": false},
	{"name": "prod", "production": true},
]

tenants := ["acme", "globex"]

# The indexes paved builds from the same configuration.
envs_by_name := {e.name: e | some e in envs}

tenant_set := {t: true | some t in tenants}

# Teams are team identifiers throughout: "payments" is the identifier both
# in the entity's team (input.team) and in the user's teams.
base := {
	"action": "add-sqs-queue",
	"operation": "DAY-2",
	"inputs": {"tenant": "acme", "environment": "dev", "queueName": "orders"},
	"user": {"email": "dev@x.io", "teams": ["payments"]},
	"entity": {"identifier": "checkout", "blueprint": "service", "team": ["payments"], "properties": {}},
	"tenant": "acme",
	"environment": "dev",
	"service": "checkout",
	"team": "payments",
}

decide(req) := d if {
	d := policy.decision with input as req
		with data.paved.environments as envs
		with data.paved.environments_by_name as envs_by_name
		with data.paved.tenants as tenants
		with data.paved.tenant_set as tenant_set
}

# messages are what the developer is shown of d's denials, and rules the
# names they are counted by.
messages(d) := {x.msg | some x in d.deny}

rules(d) := {x.rule | some x in d.deny}

test_allowed_in_dev if {
	d := decide(base)
	count(d.deny) == 0
	not d.require_approval
}

test_unknown_tenant if {
	d := decide(object.union(base, {"tenant": "initech"}))
	d.deny == {{"rule": "unknown-tenant", "msg": `tenant "initech" is not one of: acme, globex`}}
}

test_unknown_environment if {
	d := decide(object.union(base, {"environment": "qa"}))
	messages(d) == {`environment "qa" is not one of: dev, prod, staging`}
	rules(d) == {"unknown-environment"}
}

test_no_environments_configured if {
	d := policy.decision with input as base with data.paved.environments as [] with data.paved.environments_by_name as {}
		with data.paved.tenants as tenants with data.paved.tenant_set as tenant_set
	messages(d) == {`environment "dev" is not one of: (none are configured)`}
}

test_production_by_owner_allowed if {
	d := decide(object.union(base, {"environment": "prod"}))
	count(d.deny) == 0
}

test_production_by_other_team_denied if {
	d := decide(object.union(base, {"environment": "prod", "user": {"email": "dev@x.io", "teams": ["web", "mobile"]}}))
	messages(d) == {`production changes to service "checkout" may only be made by members of its owning team "payments"; you (dev@x.io) are in: mobile, web`}
	rules(d) == {"production-owning-team"}
}

# A team's display name is not its identifier: a user whose teams are given
# by name (or a lookalike) does not match the owning team's identifier.
test_production_owner_compared_by_identifier if {
	owner := object.union(base, {"environment": "prod", "team": "payments_eu"})
	count(decide(object.union(owner, {"user": {"email": "dev@x.io", "teams": ["payments_eu", "web"]}})).deny) == 0
	d := decide(object.union(owner, {"user": {"email": "dev@x.io", "teams": ["Payments EU", "payments"]}}))
	messages(d) == {`production changes to service "checkout" may only be made by members of its owning team "payments_eu"; you (dev@x.io) are in: Payments EU, payments`}
}

test_production_by_teamless_user_denied if {
	d := decide(object.union(base, {"environment": "prod", "user": {"email": "new@x.io", "teams": []}}))
	messages(d) == {`production changes to service "checkout" may only be made by members of its owning team "payments"; you (new@x.io) are in: no team`}
}

test_production_without_owner_denied if {
	d := decide(object.union(base, {"environment": "prod", "team": ""}))
	count(d.deny) == 1
	some x in d.deny
	x.rule == "production-needs-owner"
	startswith(x.msg, `service "checkout" has no owning team`)
}

test_non_production_other_team_allowed if {
	d := decide(object.union(base, {"user": {"email": "dev@x.io", "teams": ["web"]}}))
	count(d.deny) == 0
}

test_replicas_capped_in_dev if {
	d := decide(object.union(base, {"inputs": {"replicas": 12}}))
	messages(d) == {"replicas 12 exceeds the dev limit of 3; ask for 3 or less, or ask the platform team to raise the non-production cap"}
}

test_replicas_at_cap_allowed if {
	d := decide(object.union(base, {"inputs": {"replicas": 3}}))
	count(d.deny) == 0
}

test_production_caps_are_larger if {
	d := decide(object.union(base, {"environment": "prod", "inputs": {"replicas": 12, "retentionDays": 365}}))
	count(d.deny) == 0
	d2 := decide(object.union(base, {"environment": "prod", "inputs": {"replicas": 13}}))
	messages(d2) == {"replicas 13 exceeds the prod limit of 12; ask for 12 or less, or ask the platform team to raise the production cap"}
	rules(d2) == {"cap-exceeded"}
}

test_every_violation_reported if {
	d := decide(object.union(base, {"tenant": "nope", "inputs": {"retentionDays": 365, "visibilityTimeoutSeconds": 7200, "maxReceiveCount": 11}}))
	count(d.deny) == 4
	rules(d) == {"unknown-tenant", "cap-exceeded"}
}

test_non_numbers_not_capped if {
	d := decide(object.union(base, {"inputs": {"replicas": "lots"}}))
	count(d.deny) == 0
}

test_public_refused if {
	d := decide(object.union(base, {"inputs": {"public": true}}))
	messages(d) == {"public access is not offered: storage is private; publish through the CDN instead"}
	rules(d) == {"public-storage"}
}

test_production_delete_requires_approval if {
	d := decide(object.union(base, {"environment": "prod", "operation": "DELETE", "inputs": {"tenant": "acme", "environment": "prod", "confirmName": "checkout"}}))
	count(d.deny) == 0
	d.require_approval
}

test_non_production_delete_no_approval if {
	d := decide(object.union(base, {"operation": "DELETE"}))
	not d.require_approval
}

test_production_day2_no_approval if {
	d := decide(object.union(base, {"environment": "prod"}))
	not d.require_approval
}

# Who may approve: the platform team in production, the owning team for a
# delete, and any operator of paved's operator page.
test_production_delete_approvers if {
	d := decide(object.union(base, {"environment": "prod", "operation": "DELETE"}))
	d.approvers == {"platform", "payments", "operator:*"}
}

test_dev_change_approvers_are_operators if {
	d := decide(base)
	d.approvers == {"operator:*"}
}

test_delete_without_owner_has_no_team_approver if {
	d := decide(object.union(base, {"environment": "prod", "operation": "DELETE", "team": ""}))
	d.approvers == {"platform", "operator:*"}
}

# A production change as the owning team makes it, with its preview.
prod_preview(op, res) := object.union(base, {
	"operation": op,
	"inputs": {"tenant": "acme", "environment": "prod", "confirmName": "checkout"},
	"environment": "prod",
	"preview": {
		"create": count([r | some r in res; r.op == "create"]),
		"update": count([r | some r in res; r.op == "update"]),
		"replace": count([r | some r in res; r.op == "replace"]),
		"delete": count([r | some r in res; r.op == "delete"]),
		"destroy": op == "DELETE", "digest": "sha256:x", "resources": res,
	},
})

test_production_data_loss_refused if {
	d := decide(prod_preview("DAY-2", [{"op": "replace", "type": "aws:rds/cluster:Cluster", "name": "acme-prod-checkout-db"}]))
	rules(d) == {"production-data-loss"}
	some m in messages(d)
	contains(m, "replace aws:rds/cluster:Cluster acme-prod-checkout-db in production")
}

test_production_delete_action_may_remove_data if {
	d := decide(prod_preview("DELETE", [{"op": "delete", "type": "aws:s3/bucketV2:BucketV2", "name": "acme-prod-checkout-assets"}]))
	count(d.deny) == 0
	d.require_approval
}

test_production_replace_requires_approval if {
	d := decide(prod_preview("DAY-2", [{"op": "replace", "type": "aws:sns/topic:Topic", "name": "acme-prod-checkout-events"}]))
	count(d.deny) == 0
	d.require_approval
}

test_production_create_and_update_no_approval if {
	d := decide(prod_preview("DAY-2", [
		{"op": "create", "type": "aws:s3/bucketV2:BucketV2", "name": "acme-prod-checkout-logs"},
		{"op": "update", "type": "aws:sqs/queue:Queue", "name": "acme-prod-checkout-orders"},
	]))
	count(d.deny) == 0
	not d.require_approval
}

test_production_delete_needs_the_typed_name if {
	d := decide(object.union(base, {"operation": "DELETE", "environment": "prod", "inputs": {"tenant": "acme", "environment": "prod", "confirm": true}}))
	rules(d) == {"production-delete-unconfirmed"}
	d2 := decide(object.union(base, {"operation": "DELETE", "environment": "prod", "inputs": {"tenant": "acme", "environment": "prod", "confirm": true, "confirmName": "checkout"}}))
	count(d2.deny) == 0
	d3 := decide(object.union(base, {"operation": "DELETE", "inputs": {"tenant": "acme", "environment": "dev", "confirm": true}}))
	count(d3.deny) == 0
}

test_ttl_bounded_per_environment if {
	ok := decide(object.union(base, {"action": "create-service", "operation": "CREATE", "inputs": {"ttl": "3d"}, "ttl_seconds": 259200}))
	count(ok.deny) == 0
	long := decide(object.union(base, {"action": "create-service", "operation": "CREATE", "environment": "staging", "inputs": {"ttl": "4d"}, "ttl_seconds": 345600}))
	rules(long) == {"ttl-too-long"}
	some m in long.deny
	contains(m.msg, "at most 72h")
	other := decide(object.union(base, {"action": "create-service", "operation": "CREATE", "environment": "qa", "inputs": {"ttl": "8d"}, "ttl_seconds": 691200}))
	"ttl-too-long" in rules(other)
}

test_ttl_never_in_production if {
	d := decide(object.union(base, {"action": "create-service", "operation": "CREATE", "environment": "prod", "inputs": {"ttl": "8h"}, "ttl_seconds": 28800}))
	"ttl-in-production" in rules(d)
	kept := decide(object.union(base, {"action": "create-service", "operation": "CREATE", "environment": "prod", "inputs": {}}))
	not "ttl-in-production" in rules(kept)
}

cost_preview(env, others, before, monthly) := object.union(base, {
	"environment": env,
	"inputs": {"tenant": "acme", "environment": env, "queueName": "orders"},
	"preview": {
		"create": 1, "update": 0, "replace": 0, "delete": 0, "destroy": false, "digest": "sha256:x",
		"resources": [{"op": "create", "type": "aws:rds/clusterInstance:ClusterInstance", "name": "acme-x-checkout-db"}],
		"cost": {"monthly": monthly, "before": before, "delta": monthly - before, "currency": "USD", "unpriced": [], "others": others},
	},
})

test_budget_refuses_a_change_over_it if {
	d := decide(cost_preview("dev", 1900, 50, 250.5))
	rules(d) == {"budget-exceeded"}
	some m in d.deny
	contains(m.msg, "may spend 2000 USD a month; its stacks cost 1950 now and this change adds 200.5, to 2150.5")
}

test_budget_allows_a_change_within_it_or_a_saving if {
	count(decide(cost_preview("dev", 1000, 50, 250)).deny) == 0

	# Already over, but the change saves money: never stopped.
	count(decide(cost_preview("dev", 2500, 300, 100)).deny) == 0
}

test_budget_approval_line if {
	d := decide(cost_preview("staging", 3900, 0, 200))
	count(d.deny) == 0
	d.require_approval
	not decide(cost_preview("staging", 3000, 0, 200)).require_approval
}

test_extend_only_by_the_owning_team if {
	ext := object.union(base, {"action": "paved-extend-ttl", "inputs": {"tenant": "acme", "environment": "dev", "ttl": "8h"}, "ttl_seconds": 28800})
	count(decide(ext).deny) == 0
	other := decide(object.union(ext, {"user": {"email": "sam@x.io", "teams": ["web"]}}))
	rules(other) == {"extend-owning-team"}
}
