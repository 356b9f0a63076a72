{{/* The chart's name, overridable. */}}
{{- define "paved.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every object's name. */}}
{{- define "paved.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "paved.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "paved.selectorLabels" -}}
app.kubernetes.io/name: {{ include "paved.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "paved.labels" -}}
helm.sh/chart: {{ include "paved.chart" . }}
{{ include "paved.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: paved
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "paved.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "paved.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is set. */}}
{{- define "paved.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* config.store.driver, sqlite when unset (paved's default). */}}
{{- define "paved.storeDriver" -}}
{{- $store := .Values.config.store | default dict }}
{{- $store.driver | default "sqlite" }}
{{- end }}

{{/* The data volume is there for SQLite only. */}}
{{- define "paved.sqlite" -}}
{{- if eq (include "paved.storeDriver" .) "sqlite" }}true{{ end }}
{{- end }}

{{- define "paved.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "paved.fullname" .)) }}
{{- end }}

{{/* paved.yaml: config with server.listen set from containerPort. */}}
{{- define "paved.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $server := $cfg.server | default dict }}
{{- $_ := set $server "listen" ($server.listen | default (printf ":%d" (int .Values.containerPort))) }}
{{- $_ = set $cfg "server" $server }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Refuses values paved cannot run with. Included by the Deployment; renders
nothing when the values are sound.
*/}}
{{- define "paved.validate" -}}
{{- $driver := include "paved.storeDriver" . }}
{{- $store := .Values.config.store | default dict }}
{{- $replicas := int .Values.replicaCount }}
{{- $strategy := (.Values.strategy | default dict).type | default "RollingUpdate" }}
{{- if not (has $driver (list "sqlite" "postgres")) }}
{{- fail (printf "config.store.driver must be sqlite or postgres, not %q" $driver) }}
{{- end }}
{{- if eq $driver "sqlite" }}
{{- if gt $replicas 1 }}
{{- fail (printf "config.store.driver sqlite is one paved process on one file: replicaCount must be 1, not %d (use config.store.driver postgres, e.g. -f values-postgres.yaml, for more replicas)" $replicas) }}
{{- end }}
{{- if ne $strategy "Recreate" }}
{{- fail (printf "config.store.driver sqlite needs strategy.type Recreate, not %s: a rolling update would run two paved processes on the one database file" $strategy) }}
{{- end }}
{{- if not $store.path }}
{{- fail "config.store.path is required with config.store.driver sqlite" }}
{{- end }}
{{- $dir := trimSuffix "/" .Values.persistence.mountPath }}
{{- if not (hasPrefix (printf "%s/" $dir) $store.path) }}
{{- fail (printf "config.store.path (%s) must be under persistence.mountPath (%s): the database file belongs on the data volume" $store.path .Values.persistence.mountPath) }}
{{- end }}
{{- else }}
{{- if not $store.dsn }}
{{- fail "config.store.dsn is required with config.store.driver postgres: a secret reference (env:, file: or awssm:) holding the connection string" }}
{{- end }}
{{- end }}
{{- $server := .Values.config.server | default dict }}
{{- if and $server.listen (not (hasSuffix (printf ":%d" (int .Values.containerPort)) (toString $server.listen))) }}
{{- fail (printf "config.server.listen (%s) must listen on containerPort (%d); leave it unset and the chart sets it" $server.listen (int .Values.containerPort)) }}
{{- end }}
{{- $secretEnv := .Values.secrets.env | default dict }}
{{- if and $secretEnv (not .Values.secrets.existingSecret) }}
{{- fail "secrets.env maps environment variables to keys of secrets.existingSecret, which is not set (with awssm: references only, set secrets.env: {})" }}
{{- end }}
{{- $defined := keys $secretEnv }}
{{- range .Values.extraEnv }}
{{- $defined = append $defined .name }}
{{- end }}
{{- range regexFindAll "env:[A-Za-z_][A-Za-z0-9_]*" (toYaml .Values.config) -1 }}
{{- $name := trimPrefix "env:" . }}
{{- if not (has $name $defined) }}
{{- fail (printf "config references %s, but no environment variable %s is set: map it to a key of secrets.existingSecret in secrets.env (or set it in extraEnv)" . $name) }}
{{- end }}
{{- end }}
{{- end }}
