{{/* Labels every object of the app carries (a workload adds its app.kubernetes.io/name: a
second include of "todo-app.selector" would repeat app.kubernetes.io/instance, a key written
twice, which YAML forbids; Kubernetes' lenient decoder would keep the last one). */}}
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

{{/*
Pod annotations: the Linkerd proxy when the mesh is on, and the name its spans carry. Linkerd's
injector takes `resource.opentelemetry.io/*` annotations as the proxy's resource attributes;
without one, service.name would be the pod's `app.kubernetes.io/instance` label, the release
name, the same for every pod (linkerd2 pkg/inject/inject.go). The component name comes second:
include "todo-app.podAnnotations" (list . "apiserver")
*/}}
{{- define "todo-app.podAnnotations" -}}
{{- $root := index . 0 -}}
{{- if $root.Values.mesh.enabled }}
linkerd.io/inject: enabled
resource.opentelemetry.io/service.name: {{ index . 1 }}-linkerd-proxy
{{- end }}
{{- end }}

{{/*
The ports a NetworkPolicy rule opens for an app port (second): the port itself, for clients
outside the mesh, and with the mesh on Linkerd's inbound proxy port, 4143, which meshed clients
connect to instead ("any NetworkPolicy which blocks the Linkerd inbound port (4143) will block
all meshed traffic": https://linkerd.io/2/common-errors/network-policy/).
*/}}
{{- define "todo-app.policyPorts" -}}
- port: {{ index . 1 }}
{{- if (index . 0).Values.mesh.enabled }}
- port: 4143
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
