{{/*
metadata.annotations of the three webhook configurations: with cert-manager,
the CA comes from the serving Certificate; with builtin certificates the
manager injects it itself (no annotation).
*/}}
{{- define "budgetgate.webhookAnnotations" -}}
{{- if eq .Values.certificates.mode "certManager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "budgetgate.servingCertName" . }}
{{- end }}
{{- end }}

{{/*
clientConfig of a webhook. Call as (include "budgetgate.webhookClientConfig" (list . "/path")).
*/}}
{{- define "budgetgate.webhookClientConfig" -}}
{{- $ctx := index . 0 -}}
service:
  name: {{ include "budgetgate.webhookServiceName" $ctx }}
  namespace: {{ $ctx.Release.Namespace }}
  path: {{ index . 1 }}
{{- end }}

{{/*
namespaceSelector of the release and history gates.
*/}}
{{- define "budgetgate.gateNamespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- include "budgetgate.excludedNamespaces" . | nindent 6 }}
{{- end }}
