# paved's policy for portal actions. paved evaluates data.paved.policy.decision
# once per request, after the inputs passed the action's JSON Schema.
#
# input: see internal/policy.Input (action, operation, inputs, user{email,
# teams}, entity{identifier, blueprint, team, properties}, tenant,
# environment, service, team = the service's owning team), and preview once
# the run's pipeline has previewed the change (absent at intake: rules on it
# do not apply then): {create, update, replace, delete: counts, destroy,
# digest, resources: [{op, type, name}], cost}, op one of create, update,
# replace, delete, type a Pulumi type token, cost the pipeline's estimate
# {monthly, before, delta, currency, unpriced, others} (see budgets below;
# absent from older pipelines); ttl_seconds when the run makes
# an ephemeral stack (the input ttl) or extends one (paved-extend-ttl).
#
# Teams are compared by IDENTIFIER, never by display name: Port's entity
# "team" holds team identifiers, so input.team and entity.team are
# identifiers, and input.user.teams holds the identifiers of the user's
# teams (Port's teamsIdentifiers, looked up by paved; only an older Port
# answer without that field falls back to team names).
# data.paved: {"environments": [{"name", "production"}], "tenants": [...],
# and the same indexed: "environments_by_name": {name: {"name", "production"}},
# "tenant_set": {tenant: true}} from paved's configuration. Rules look names up
# in the indexes (a lookup, not a comprehension per decision).
#
# A deny rule adds {"rule": name, "msg": message} to deny. The message says
# what is wrong and what to do about it: it is shown to the developer as the
# reason their run was rejected. The name is the rule's, fixed, kebab-case
# (^[a-z0-9][a-z0-9-]{0,62}$), so that operators can count denials by rule
# in a metric, which the message, holding user input, cannot label. Rules
# that share a name (the two cap rules) are one rule to the operator. A bare
# message string is still accepted, as a denial with no name.
package paved.policy

decision := {
	"deny": deny,
	"require_approval": require_approval,
	"approvers": approvers,
}

environments := data.paved.environments_by_name

# production is true when the run changes a production environment.
production if environments[input.environment].production == true

# Resource caps per environment class, keyed by input name. An action whose
# inputs have one of these names is capped, whatever the action.
caps := {
	"production": {
		"replicas": 12,
		"retentionDays": 2555,
		"visibilityTimeoutSeconds": 43200,
		"maxReceiveCount": 100,
	},
	"non-production": {
		"replicas": 3,
		"retentionDays": 90,
		"visibilityTimeoutSeconds": 3600,
		"maxReceiveCount": 10,
	},
}

# listed joins names, a set, for a message, or says empty when there are
# none: the lookup keyed by the empty set finds empty, and concat walks a
# set in sorted order. One expression, with no else, so that partial
# evaluation (internal/policy) inlines it: left as a function, its call was
# a quarter of what the owning-team denial's message cost per decision.
listed(names, empty) := object.get({set(): empty}, names, concat(", ", names))

deny contains {"rule": "unknown-tenant", "msg": msg} if {
	not data.paved.tenant_set[input.tenant]
	tenants := {t | some t in data.paved.tenants}
	msg := sprintf("tenant %q is not one of: %s", [input.tenant, listed(tenants, "(none are configured)")])
}

deny contains {"rule": "unknown-environment", "msg": msg} if {
	not environments[input.environment]
	names := {n | some n, _ in environments}
	msg := sprintf("environment %q is not one of: %s", [input.environment, listed(names, "(none are configured)")])
}

# Production changes only by the owning team: its identifier must be one of
# the user's team identifiers, exactly. The owner is input.team, not
# object.get(input, "team", ""): the same here (no team and "" both end the
# rule), and partial evaluation would repeat the call at every use of owner.
deny contains {"rule": "production-owning-team", "msg": msg} if {
	production
	owner := input.team
	owner != ""
	not owner in input.user.teams
	user_teams := {t | some t in input.user.teams}
	msg := sprintf(
		"production changes to service %q may only be made by members of its owning team %q; you (%s) are in: %s",
		[input.service, owner, input.user.email, listed(user_teams, "no team")],
	)
}

# production second, as in the cap rules: the index has already chosen
# the rule by it.
deny contains {"rule": "production-needs-owner", "msg": msg} if {
	object.get(input, "team", "") == ""
	production
	msg := sprintf(
		"service %q has no owning team, and production changes need one; set the service's team in the portal, then run the action again",
		[input.service],
	)
}

# One rule per class, not caps[env_class]: partial evaluation (see
# internal/policy) turns production into a comparison on input.environment,
# which OPA's rule index selects on, so a decision evaluates only its class's
# caps. The order within is for speed, not meaning: "value > limit" first,
# as most values are under their cap (is_number then keeps strings, which
# Rego orders above numbers, out), and production after it: the index
# selects on it wherever it stands, so evaluating it first only repeats
# what the index checked; "not production", which cannot be indexed, last.
deny contains {"rule": "cap-exceeded", "msg": msg} if {
	some name, limit in caps.production
	value := input.inputs[name]
	value > limit
	is_number(value)
	production
	msg := sprintf(cap_exceeded, [name, value, input.environment, limit, limit, "production"])
}

deny contains {"rule": "cap-exceeded", "msg": msg} if {
	some name, limit in caps["non-production"]
	value := input.inputs[name]
	value > limit
	is_number(value)
	not production
	msg := sprintf(cap_exceeded, [name, value, input.environment, limit, limit, "non-production"])
}

cap_exceeded := "%s %v exceeds the %s limit of %v; ask for %v or less, or ask the platform team to raise the %s cap"

# Defence in depth: no action offers public storage, and a hand-made request
# must not sneak it in.
deny contains {"rule": "public-storage", "msg": msg} if {
	input.inputs.public == true
	msg := "public access is not offered: storage is private; publish through the CDN instead"
}

# Resources whose deletion or replacement loses data.
holds_data := {"aws:rds/cluster:Cluster", "aws:dynamodb/table:Table", "aws:s3/bucketV2:BucketV2", "aws:s3/bucket:Bucket"}

# A change that would delete or replace a database, table or bucket in
# production is refused, whatever else it does; only the explicit DELETE
# action (approved, with its typed confirmation) may remove one. The bare
# input.preview.resources first lets OPA's rule index skip the rule when
# there is no preview (at intake), and "in holds_data" keeps it one rule
# after partial evaluation, where holds_data[res.type] made one per type.
deny contains {"rule": "production-data-loss", "msg": msg} if {
	input.preview.resources
	production
	input.operation != "DELETE"
	some res in input.preview.resources
	res.op in {"delete", "replace"}
	res.type in holds_data
	msg := sprintf(
		"this change would %s %s %s in production, losing its data; nothing was applied. Change the inputs so the resource is kept, or ask the platform team to migrate it",
		[res.op, res.type, res.name],
	)
}

# Deleting a production deployment destroys its data: the developer types
# the service's name to confirm (the input confirmName), besides the
# approval it waits for.
deny contains {"rule": "production-delete-unconfirmed", "msg": msg} if {
	production
	input.operation == "DELETE"
	object.get(input.inputs, "confirmName", "") != input.service
	msg := sprintf(
		"deleting service %q in production destroys its stack and its data: type the service's name, %s, in confirmName to confirm",
		[input.service, input.service],
	)
}

# Ephemeral stacks (the input ttl, seen as input.ttl_seconds; also the TTL
# asked by paved-extend-ttl): never in production, where a stack is meant
# to last, and elsewhere at most the environment's longest TTL, in hours.
ttl_max_hours := {"dev": 336, "staging": 72}

ttl_limit := h if {
	h := ttl_max_hours[input.environment]
} else := 168

deny contains {"rule": "ttl-in-production", "msg": msg} if {
	input.ttl_seconds > 0
	production
	msg := sprintf("environment %q is production, where stacks are not ephemeral: leave ttl empty", [input.environment])
}

deny contains {"rule": "ttl-too-long", "msg": msg} if {
	not production
	input.ttl_seconds > ttl_limit * 3600
	msg := sprintf(
		"a ttl of %dh is longer than environment %q allows: at most %dh; ask for less, and extend it later with paved-extend-ttl",
		[ceil(input.ttl_seconds / 3600), input.environment, ttl_limit],
	)
}

# An ephemeral stack's time is its owning team's to extend: anyone else
# could keep another team's stack alive for ever.
deny contains {"rule": "extend-owning-team", "msg": msg} if {
	input.action == "paved-extend-ttl"
	input.team != ""
	not input.team in input.user.teams
	user_teams := {t | some t in input.user.teams}
	msg := sprintf("only the owning team %q may extend the stacks of service %q; you are in: %s", [input.team, input.service, listed(user_teams, "no team")])
}

# Monthly budgets per tenant and environment, in the price table's currency
# (USD), against the pipeline's estimate of the change (input.preview.cost:
# monthly and before are the run's stack after and before the change, delta
# the difference, others what the tenant's other stacks in the environment
# cost now; the fixed part only, see internal/cost/prices.yaml). "limit"
# refuses a change that adds cost and takes the total over it;
# "approval_above" asks an approval for one that takes it over that. A
# change that saves money is never stopped by a budget.
budgets := {
	"acme": {
		"dev": {"limit": 2000},
		"staging": {"limit": 5000, "approval_above": 4000},
		"prod": {"limit": 50000, "approval_above": 30000},
	},
	"globex": {"dev": {"limit": 1000}},
}

budget := budgets[input.tenant][input.environment]

budget_now := input.preview.cost.others + input.preview.cost.before

budget_after := input.preview.cost.others + input.preview.cost.monthly

# The limit is looked up once: partial evaluation expands each use of
# budget into one rule per budget, so two uses made 16 rules, most of which
# could never hold, and all of which OPA's rule index sorts through on every
# decision.
deny contains {"rule": "budget-exceeded", "msg": msg} if {
	input.preview.cost.delta > 0
	limit := budget.limit
	budget_after > limit
	msg := sprintf(
		"over budget: tenant %q in %q may spend %v %s a month; its stacks cost %v now and this change adds %v, to %v; nothing was applied. Make the change smaller, remove something, or ask the platform team to raise the budget",
		[input.tenant, input.environment, limit, input.preview.cost.currency, budget_now, input.preview.cost.delta, budget_after],
	)
}

default require_approval := false

# A change that takes a tenant's spending in an environment over the
# budget's approval line waits for an approval of its preview.
require_approval if {
	input.preview.cost.delta > 0
	budget_after > budget.approval_above
}

# Any replace or delete in production waits for an approval of its preview.
require_approval if {
	production
	input.preview.replace + input.preview.delete > 0
}

# Deleting anything in production waits for a second person's approval.
require_approval if {
	production
	input.operation == "DELETE"
}

# Who may approve (or deny) a run that waits for approval: team identifiers,
# emails, and operator:* (any operator signed in to paved's operator page) or
# operator:<name>. paved asks again at each decision, and never lets the
# person who asked for the run decide on it.
approvers contains "platform" if production

# A delete is also the owning team's to approve.
approvers contains owner if {
	input.operation == "DELETE"
	owner := input.team
	owner != ""
}

approvers contains "operator:*"
