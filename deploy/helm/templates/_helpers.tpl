{{/*
Names. Kubernetes names are at most 63 characters: the full name is truncated, and a
component name truncates the full name first so that its suffix always survives (two
components never collide on a long release name).
*/}}
{{- define "mergequeue.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mergequeue.fullname" -}}
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

{{/* (list $ "suffix") -> "<fullname>-suffix", at most 63 characters. */}}
{{- define "mergequeue.componentName" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- $max := int (sub 62 (len $suffix)) }}
{{- printf "%s-%s" (include "mergequeue.fullname" $root | trunc $max | trimSuffix "-") $suffix }}
{{- end }}

{{- define "mergequeue.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mergequeue.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mergequeue.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mergequeue.labels" -}}
helm.sh/chart: {{ include "mergequeue.chart" . }}
{{ include "mergequeue.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mergequeue
{{- end }}

{{/* (list $ "web") -> selector labels of one component. */}}
{{- define "mergequeue.componentSelectorLabels" -}}
{{ include "mergequeue.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "mergequeue.componentLabels" -}}
{{ include "mergequeue.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* repository@digest when image.digest is set (the digest wins over the tag), else
repository:tag (tag defaulting to the chart's appVersion). */}}
{{- define "mergequeue.image" -}}
{{- with .Values.image.digest }}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" .) }}
{{- fail (printf "image.digest must look like sha256:<64 hex digits>, got %q" .) }}
{{- end }}
{{- printf "%s@%s" $.Values.image.repository . }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* (list $ "web") -> a PodDisruptionBudget for one component, when enabled. */}}
{{- define "mergequeue.pdb" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $pdb := (index $root.Values $component).podDisruptionBudget }}
{{- if $pdb.enabled }}
{{- if and (kindIs "invalid" $pdb.maxUnavailable) (kindIs "invalid" $pdb.minAvailable) }}
{{- fail (printf "%s.podDisruptionBudget: set maxUnavailable or minAvailable" $component) }}
{{- end }}
{{- if and (not (kindIs "invalid" $pdb.maxUnavailable)) (not (kindIs "invalid" $pdb.minAvailable)) }}
{{- fail (printf "%s.podDisruptionBudget: set only one of maxUnavailable and minAvailable (the other null)" $component) }}
{{- end }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "mergequeue.componentName" (list $root $component) }}
  labels:
    {{- include "mergequeue.componentLabels" (list $root $component) | nindent 4 }}
spec:
  {{- if kindIs "invalid" $pdb.maxUnavailable }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "mergequeue.componentSelectorLabels" (list $root $component) | nindent 6 }}
{{- end }}
{{- end }}

{{- define "mergequeue.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mergequeue.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of the migration Job: a hook-time copy, since the release's own
ServiceAccount does not exist yet when a pre-install hook runs. */}}
{{- define "mergequeue.migrations.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- include "mergequeue.componentName" (list . "migrations") }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Secrets. The environment variables that may only come from a Secret, and the values key
that fills each in a chart-created Secret. DATABASE_URL and REDIS_URL are required keys of
an existing Secret; the others are optional.
*/}}
{{- define "mergequeue.secretEnv" -}}
DATABASE_URL: {value: databaseUrl, optional: false}
REDIS_URL: {value: redisUrl, optional: false}
GITHUB_APP_PRIVATE_KEY: {value: githubAppPrivateKey, optional: true}
GITHUB_WEBHOOK_SECRET: {value: githubWebhookSecret, optional: true}
API_TOKENS: {value: apiTokens, optional: true}
GITHUB_TOKEN: {value: githubToken, optional: true}
GITHUB_OAUTH_CLIENT_SECRET: {value: githubOauthClientSecret, optional: true}
SESSION_SECRET: {value: sessionSecret, optional: true}
NOTIFY_WEBHOOK_URL: {value: notifyWebhookUrl, optional: true}
{{- end }}

{{/* The Secret's data (base64), from values; empty when an existing Secret is used. */}}
{{- define "mergequeue.secretData" -}}
{{- if not .Values.secrets.existingSecret }}
{{- $secretEnv := include "mergequeue.secretEnv" . | fromYaml }}
{{- range $name := keys $secretEnv | sortAlpha }}
{{- $v := index $.Values.secrets (index $secretEnv $name).value }}
{{- if $v }}
{{ $name }}: {{ $v | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mergequeue.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "mergequeue.fullname" . }}
{{- end }}
{{- end }}

{{- define "mergequeue.migrations.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "mergequeue.componentName" (list . "migrations") }}
{{- end }}
{{- end }}

{{- define "mergequeue.basicAuth.secretName" -}}
{{- if .Values.metrics.basicAuth.existingSecret }}
{{- .Values.metrics.basicAuth.existingSecret }}
{{- else }}
{{- include "mergequeue.componentName" (list . "metrics-auth") }}
{{- end }}
{{- end }}

{{/*
Effective environment. (list $ <component env list> ...) -> JSON list of {name, value} or
{name, valueFrom}: common.env first, then each given list; a later entry with the same
name replaces the earlier one in place (Kubernetes would keep duplicates and warn).
Refuses literal values for secret variables, a PROMETHEUS_PORT outside worker.metrics.port,
and booleans the app would refuse at start.
*/}}
{{- define "mergequeue.effectiveEnv" -}}
{{- $root := index . 0 }}
{{- $names := list }}
{{- $byName := dict }}
{{- $forbidden := include "mergequeue.secretEnv" $root | fromYaml }}
{{- $_ := set $forbidden "PROMETHEUS_BASIC_AUTH_USERNAME" (dict "value" "metrics.basicAuth") }}
{{- $_ := set $forbidden "PROMETHEUS_BASIC_AUTH_PASSWORD" (dict "value" "metrics.basicAuth") }}
{{- range $list := prepend (rest .) $root.Values.common.env }}
{{- range $e := $list }}
{{- if hasKey $forbidden $e.name }}
{{- if hasKey $e "value" }}
{{- fail (printf "%s must not be a plain value in env (it would be readable in the Deployment): set it through %s" $e.name (ternary "metrics.basicAuth" (printf "secrets.%s or secrets.existingSecret" (index $forbidden $e.name).value) (hasPrefix "PROMETHEUS_BASIC_AUTH" $e.name))) }}
{{- end }}
{{- end }}
{{- if eq $e.name "PROMETHEUS_PORT" }}
{{- fail "PROMETHEUS_PORT is set by the chart from worker.metrics.port: set that instead of an env entry" }}
{{- end }}
{{- if and (has $e.name (list "SERVE_PROMETHEUS_ENDPOINT" "ENABLE_DB_METRICS")) (hasKey $e "value") }}
{{- if not (has (lower (toString $e.value)) (list "true" "false" "1" "0" "yes" "no")) }}
{{- fail (printf "%s must be one of true/false/1/0/yes/no (any case), got %q" $e.name (toString $e.value)) }}
{{- end }}
{{- end }}
{{- if not (hasKey $byName $e.name) }}
{{- $names = append $names $e.name }}
{{- end }}
{{- $_ := set $byName $e.name $e }}
{{- end }}
{{- end }}
{{- $out := list }}
{{- range $n := $names }}
{{- $out = append $out (get $byName $n) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* (list $ <effective env>) -> the literal value of one variable, or "" when unset/empty. */}}
{{- define "mergequeue.envValue" -}}
{{- $name := index . 1 }}
{{- range $e := index . 0 }}
{{- if eq $e.name $name }}
{{- if hasKey $e "valueFrom" }}
{{- fail (printf "%s must be a literal value, not valueFrom: the chart reads it to render the pods (metrics port, scrape annotations, volumes)" $name) }}
{{- end }}
{{- toString (default "" $e.value) | trim }}
{{- end }}
{{- end }}
{{- end }}

{{/* The web environment: common.env, then chart defaults, then web.env. */}}
{{- define "mergequeue.web.env" -}}
{{- $chartEnv := list }}
{{- with .Values.web.forwardedAllowIps }}
{{- $chartEnv = append $chartEnv (dict "name" "FORWARDED_ALLOW_IPS" "value" .) }}
{{- end }}
{{- with .Values.web.allowedHosts }}
{{- $chartEnv = append $chartEnv (dict "name" "ALLOWED_HOSTS" "value" (join "," .)) }}
{{- end }}
{{- if gt (int .Values.web.workers) 1 }}
{{- $chartEnv = append $chartEnv (dict "name" "PROMETHEUS_MULTIPROC_DIR" "value" "/var/run/mergequeue/prometheus") }}
{{- end }}
{{- include "mergequeue.effectiveEnv" (list . $chartEnv .Values.web.env) }}
{{- end }}

{{/*
Where the web process serves metrics, from its effective environment (docs/operations.md 4.3):
WEB_PROMETHEUS_PORT set -> /metrics on that port (named containerPort "metrics");
else SERVE_PROMETHEUS_ENDPOINT true -> /debug/metrics on the main port; else nowhere ({}).
*/}}
{{- define "mergequeue.web.metrics" -}}
{{- $env := include "mergequeue.web.env" . | fromJsonArray }}
{{- $port := include "mergequeue.envValue" (list $env "WEB_PROMETHEUS_PORT") }}
{{- $serve := include "mergequeue.envValue" (list $env "SERVE_PROMETHEUS_ENDPOINT") | lower }}
{{- if $port }}
{{- if not (regexMatch "^[0-9]+$" $port) }}
{{- fail (printf "WEB_PROMETHEUS_PORT must be a TCP port number, got %q" $port) }}
{{- end }}
{{- if or (lt (atoi $port) 1) (gt (atoi $port) 65535) (eq (atoi $port) 8000) }}
{{- fail (printf "WEB_PROMETHEUS_PORT must be 1-65535 and not the main port 8000, got %s" $port) }}
{{- end }}
{{- dict "port" (atoi $port) "path" "/metrics" "portName" "metrics" | toJson }}
{{- else if has $serve (list "true" "1" "yes") }}
{{- dict "port" 8000 "path" "/debug/metrics" "portName" "http" | toJson }}
{{- else }}
{{- dict | toJson }}
{{- end }}
{{- end }}

{{/*
The env: block of a container: (dict "root" $ "env" <effective env> "secretName" <name>
"basicAuth" <bool>). Rendered for web, worker and the migration Job alike: the effective
plain environment, then every secret variable through secretKeyRef (unless env already
brings it with its own valueFrom).
*/}}
{{- define "mergequeue.containerEnv" -}}
{{- $root := .root }}
{{- range $e := .env }}
- {{ toYaml $e | nindent 2 | trim }}
{{- end }}
{{- $secretEnv := include "mergequeue.secretEnv" $root | fromYaml }}
{{- $data := include "mergequeue.secretData" $root | fromYaml }}
{{- $given := dict }}
{{- range $e := .env }}{{- $_ := set $given $e.name true }}{{- end }}
{{- range $name := keys $secretEnv | sortAlpha }}
{{- if and (or $root.Values.secrets.existingSecret (hasKey $data $name)) (not (hasKey $given $name)) }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $.secretName }}
      key: {{ $name }}
      {{- if and $root.Values.secrets.existingSecret (index $secretEnv $name).optional }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
{{- if and .basicAuth $root.Values.metrics.basicAuth.enabled }}
- name: PROMETHEUS_BASIC_AUTH_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "mergequeue.basicAuth.secretName" $root }}
      key: {{ $root.Values.metrics.basicAuth.usernameKey }}
- name: PROMETHEUS_BASIC_AUTH_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "mergequeue.basicAuth.secretName" $root }}
      key: {{ $root.Values.metrics.basicAuth.passwordKey }}
{{- end }}
{{- end }}

{{/* checksum/config: rolls the pods when their configuration or chart-made Secrets change. */}}
{{- define "mergequeue.configChecksum" -}}
{{- $root := index . 0 }}
{{- list (index . 1) (include "mergequeue.secretData" $root) $root.Values.secrets.existingSecret $root.Values.metrics.basicAuth | toJson | sha256sum }}
{{- end }}

{{/* (dict "probe" <values> "handler" <yaml string>) -> a probe, or nothing when disabled. */}}
{{- define "mergequeue.probe" -}}
{{- if .probe.enabled }}
{{- .handler }}
initialDelaySeconds: {{ .probe.initialDelaySeconds }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end }}
{{- end }}

{{/* Volumes every pod needs with a read-only root filesystem: /tmp, and the multiprocess
directory when PROMETHEUS_MULTIPROC_DIR is set. (list <effective env> <extra volumes>) */}}
{{- define "mergequeue.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if include "mergequeue.envValue" (list (index . 0) "PROMETHEUS_MULTIPROC_DIR") }}
- name: prometheus-multiproc
  emptyDir: {}
{{- end }}
{{- with index . 1 }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "mergequeue.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- with include "mergequeue.envValue" (list (index . 0) "PROMETHEUS_MULTIPROC_DIR") }}
- name: prometheus-multiproc
  mountPath: {{ . }}
{{- end }}
{{- with index . 1 }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* A Deployment strategy. Helm merges the user's map into the default, so `type: Recreate`
arrives with the default's rollingUpdate, which Kubernetes refuses: drop it then. */}}
{{- define "mergequeue.strategy" -}}
{{- if eq (toString .type) "Recreate" }}
{{- toYaml (omit . "rollingUpdate") }}
{{- else if . }}
{{- toYaml . }}
{{- end }}
{{- end }}
