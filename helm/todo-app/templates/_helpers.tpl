{{/* Labels every object of the app carries. */}}
{{- define "todo-app.labels" -}}
app.kubernetes.io/part-of: todo-app
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* The selector of one component: include "todo-app.selector" (list . "apiserver") */}}
{{- define "todo-app.selector" -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
{{- end }}

{{/* Pod annotations: the Linkerd proxy when the mesh is on. */}}
{{- define "todo-app.podAnnotations" -}}
{{- if .Values.mesh.enabled }}
linkerd.io/inject: enabled
{{- end }}
{{- end }}

{{/* The tracing environment shared by both services; the component name comes second. */}}
{{- define "todo-app.tracingEnv" -}}
{{- $root := index . 0 -}}
- name: OTEL_SDK_DISABLED
  value: {{ (not $root.Values.tracing.app) | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ index . 1 | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $root.Values.tracing.endpoint | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $root.Values.tracing.sampler | quote }}
{{- if $root.Values.tracing.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $root.Values.tracing.samplerArg | quote }}
{{- end }}
- name: OTEL_PROPAGATORS
  value: {{ $root.Values.tracing.propagators | quote }}
- name: K8S_POD_NAME
  valueFrom: { fieldRef: { fieldPath: metadata.name } }
- name: K8S_NAMESPACE_NAME
  valueFrom: { fieldRef: { fieldPath: metadata.namespace } }
- name: K8S_NODE_NAME
  valueFrom: { fieldRef: { fieldPath: spec.nodeName } }
- name: LOG_FORMAT
  value: json
{{- end }}
