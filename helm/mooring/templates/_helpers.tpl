{{/* Chart name, truncated to 63 characters. */}}
{{- define "mooring.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified name prefix of every object. */}}
{{- define "mooring.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mooring.controller.fullname" -}}
{{- printf "%s-controller" (include "mooring.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mooring.speaker.fullname" -}}
{{- printf "%s-speaker" (include "mooring.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "mooring.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "mooring.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mooring
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "controller"). */}}
{{- define "mooring.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mooring.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mooring.componentLabels" -}}
{{ include "mooring.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mooring.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create -}}
{{- default (include "mooring.controller.fullname" .) .Values.controller.serviceAccount.name -}}
{{- else -}}
{{- required "controller.serviceAccount.name is required when controller.serviceAccount.create is false" .Values.controller.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mooring.speaker.serviceAccountName" -}}
{{- if .Values.speaker.serviceAccount.create -}}
{{- default (include "mooring.speaker.fullname" .) .Values.speaker.serviceAccount.name -}}
{{- else -}}
{{- required "speaker.serviceAccount.name is required when speaker.serviceAccount.create is false" .Values.speaker.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mooring.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* "true" when the speaker listens on a privileged port (1..1023). */}}
{{- define "mooring.speaker.lowPort" -}}
{{- $p := int .Values.speaker.listenPort -}}
{{- if and (gt $p 0) (lt $p 1024) -}}true{{- end -}}
{{- end -}}

{{/* Name of the Secret holding a quick-start peer's password. */}}
{{- define "mooring.quickstart.secretName" -}}
{{- printf "%s-bgppeer-%s" (include "mooring.fullname" .ctx) .peer | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Namespaces the speaker may get Secrets in, as a JSON list. */}}
{{- define "mooring.speaker.secretNamespaces" -}}
{{- $ns := .Values.speaker.secrets.namespaces | default (list .Release.Namespace) -}}
{{- if .Values.quickstart.enabled -}}
{{- range .Values.quickstart.peers -}}
{{- if .password -}}
{{- $ns = append $ns $.Release.Namespace -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $ns | uniq | toJson -}}
{{- end -}}

{{/* Secret names the speaker may get (empty list: none), as a JSON list. */}}
{{- define "mooring.speaker.secretNames" -}}
{{- $names := .Values.speaker.secrets.resourceNames | default list -}}
{{- if .Values.quickstart.enabled -}}
{{- range .Values.quickstart.peers -}}
{{- if .password -}}
{{- $names = append $names (include "mooring.quickstart.secretName" (dict "ctx" $ "peer" .name)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $names | uniq | toJson -}}
{{- end -}}
