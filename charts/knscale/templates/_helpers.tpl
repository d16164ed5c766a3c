{{/* Labels of every object: config/base's (name, component, part-of) plus Helm's conventional ones. */}}
{{- define "knscale.labels" -}}
{{ include "knscale.selectorLabels" . }}
app.kubernetes.io/part-of: knscale
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{/* Selector labels: exactly config/base's, so pods and PDBs match either install. */}}
{{- define "knscale.selectorLabels" -}}
app.kubernetes.io/name: knscale
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "knscale.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "knscale.certManager" -}}
{{- if eq .Values.certificates.mode "cert-manager" -}}true{{- else if eq .Values.certificates.mode "self-managed" -}}{{- else -}}
{{- fail (printf "certificates.mode must be self-managed or cert-manager, not %q" .Values.certificates.mode) -}}
{{- end -}}
{{- end -}}

{{/* The namespaces the webhooks never see (sorted, like webhook/registration.py). */}}
{{- define "knscale.excludedNamespaces" -}}
{{ list .Release.Namespace "kube-node-lease" "kube-public" "kube-system" | uniq | sortAlpha | toYaml }}
{{- end -}}

{{- define "knscale.caInjection" -}}
{{- if include "knscale.certManager" . }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/knscale-webhook
{{- end }}
{{- end -}}

{{/* The settings file: .Values.config, plus injection.mutate_templates in template mode. */}}
{{- define "knscale.configYaml" -}}
{{- $config := deepCopy .Values.config -}}
{{- if .Values.templateMode.enabled -}}
{{- $config = mustMergeOverwrite $config (dict "injection" (dict "mutate_templates" true)) -}}
{{- end -}}
{{- if $config -}}{{ toYaml $config }}{{- end -}}
{{- end -}}

{{/* The reconciler's Lease names (reconciler/runtime/buckets.py all_lease_names), as a JSON list. */}}
{{- define "knscale.leaseNames" -}}
{{- $n := int .Values.reconciler.buckets -}}
{{- if or (lt $n 1) (gt $n 32) -}}{{- fail "reconciler.buckets must be between 1 and 32" -}}{{- end -}}
{{- if eq $n 1 -}}
["knscale-reconciler"]
{{- else -}}
{{- $names := list -}}
{{- range $i := until $n -}}{{- $names = append $names (printf "knscale-reconciler-%d" $i) -}}{{- end -}}
{{ append $names "knscale-reconciler-members" | toJson }}
{{- end -}}
{{- end -}}
