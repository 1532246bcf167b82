{{/*
The chart name: the app.kubernetes.io/name label and selector.
*/}}
{{- define "budgetgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name, as kustomize's namePrefix "budgetgate-" in
config/default: the release name if it contains the chart name, else
"<release>-budgetgate".
*/}}
{{- define "budgetgate.fullname" -}}
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

{{/*
A component's name, "<fullname>-<suffix>", within the 63 characters of a
DNS label. Call as (include "budgetgate.component" (list . "suffix")).
*/}}
{{- define "budgetgate.component" -}}
{{- $ctx := index . 0 }}
{{- printf "%s-%s" (include "budgetgate.fullname" $ctx) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "budgetgate.managerName" -}}
{{- include "budgetgate.component" (list . "controller-manager") }}
{{- end }}

{{- define "budgetgate.webhookServiceName" -}}
{{- include "budgetgate.component" (list . "webhook-service") }}
{{- end }}

{{- define "budgetgate.metricsServiceName" -}}
{{- include "budgetgate.component" (list . "controller-manager-metrics-service") }}
{{- end }}

{{- define "budgetgate.certSecretName" -}}
{{- include "budgetgate.component" (list . "webhook-server-cert") }}
{{- end }}

{{- define "budgetgate.servingCertName" -}}
{{- include "budgetgate.component" (list . "serving-cert") }}
{{- end }}

{{- define "budgetgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "budgetgate.managerName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The names of the three webhook configurations: "<fullname>-<suffix>", as
kustomize's prefix gives them. The manager injects its CA into exactly these
names (--webhook-configuration-prefix, passed when the prefix is not its
default "budgetgate-"). Call as
(include "budgetgate.webhookConfigurationName" (list . "workload-release-gate")).
*/}}
{{- define "budgetgate.webhookConfigurationName" -}}
{{- include "budgetgate.component" . }}
{{- end }}

{{/*
The labels the manager pods are selected by (as config/manager).
*/}}
{{- define "budgetgate.selectorLabels" -}}
control-plane: controller-manager
app.kubernetes.io/name: {{ include "budgetgate.name" . }}
{{- end }}

{{/*
The labels every object carries because Helm manages it. test/chart ignores
exactly these (they have no counterpart in config/).
*/}}
{{- define "budgetgate.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The labels of most objects: app.kubernetes.io/name and Helm's. (Objects that
config/ leaves without app.kubernetes.io/name get budgetgate.helmLabels only,
so that the chart renders what kustomize does.)
*/}}
{{- define "budgetgate.labels" -}}
app.kubernetes.io/name: {{ include "budgetgate.name" . }}
{{ include "budgetgate.helmLabels" . }}
{{- end }}

{{/*
The labels of the Deployment, the metrics Service and the ServiceMonitor.
*/}}
{{- define "budgetgate.managerLabels" -}}
{{ include "budgetgate.selectorLabels" . }}
{{ include "budgetgate.helmLabels" . }}
{{- end }}

{{/*
The manager image: repository@digest when image.digest is set, else
repository:tag (tag defaults to the chart's appVersion).
*/}}
{{- define "budgetgate.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository }}
{{- with .Values.image.digest }}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" (toString .)) }}
{{- fail (printf "image.digest %q must be sha256:<64 lowercase hex digits>" (toString .)) }}
{{- end }}
{{- printf "%s@%s" $repo . }}
{{- else }}
{{- printf "%s:%s" $repo (toString (default .Chart.AppVersion .Values.image.tag)) }}
{{- end }}
{{- end }}

{{/*
The namespaces the release and history gates exclude: webhook.excludedNamespaces
and, always, the release namespace.
*/}}
{{- define "budgetgate.excludedNamespaces" -}}
{{- $ns := list }}
{{- range .Values.webhook.excludedNamespaces }}
{{- $ns = append $ns (toString .) }}
{{- end }}
{{- if not (has .Release.Namespace $ns) }}
{{- $ns = append $ns .Release.Namespace }}
{{- end }}
{{- toYaml $ns }}
{{- end }}

{{/*
Fails on values that would render a broken installation. Included by the
Deployment, so that it runs once per render.
*/}}
{{- define "budgetgate.validate" -}}
{{- if not (has .Values.certificates.mode (list "builtin" "certManager")) }}
{{- fail (printf "certificates.mode must be builtin or certManager, not %q" (toString .Values.certificates.mode)) }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "leaderElection.enabled must be true when replicaCount is more than 1: the reconcilers must run on one replica only" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "serviceMonitor.enabled needs metrics.enabled" }}
{{- end }}
{{- with .Values.decisionDeadline }}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$" (toString .)) }}
{{- fail (printf "decisionDeadline %q is not a Go duration such as 1500ms" (toString .)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The --prometheus-connections file of prometheus.connections.
*/}}
{{- define "budgetgate.prometheusConnections" -}}
{{ toYaml (dict "connections" .Values.prometheus.connections) }}
{{- end }}
