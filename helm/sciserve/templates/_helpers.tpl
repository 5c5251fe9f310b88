{{/* Names and labels. */}}
{{- define "sciserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sciserve.fullname" -}}
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

{{/* Labels every object carries. */}}
{{- define "sciserve.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "sciserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "gateway"). */}}
{{- define "sciserve.selector" -}}
app.kubernetes.io/name: {{ include "sciserve.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sciserve.componentLabels" -}}
{{ include "sciserve.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sciserve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sciserve.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The sciserve image: workers' device picks the flavour unless a tag is given. */}}
{{- define "sciserve.image" -}}
{{- $tag := .Values.image.tag | default (printf "%s-%s" .Chart.AppVersion (ternary "cuda" "cpu" (eq .Values.worker.device "gpu"))) -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{- define "sciserve.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "sciserve.fullname" .)) -}}
{{- end -}}

{{/* The Secret holding the tool servers' service token under `tool-token`. */}}
{{- define "sciserve.toolTokenSecret" -}}
{{- .Values.toolServers.existingSecret | default (printf "%s-tool-token" (include "sciserve.fullname" .)) -}}
{{- end -}}

{{/* SCISERVE_TOOL_TOKEN from that Secret: tool servers require it, workers send it. */}}
{{- define "sciserve.toolTokenEnv" -}}
- name: SCISERVE_TOOL_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "sciserve.toolTokenSecret" . }}
      key: tool-token
{{- end -}}

{{/* The Secret of an external Redis's URL (bundled: the one of its password below). */}}
{{- define "sciserve.redisSecret" -}}
{{- if and (not .Values.redis.bundled) .Values.redis.external.existingSecret -}}
{{- .Values.redis.external.existingSecret -}}
{{- else -}}
{{- printf "%s-redis" (include "sciserve.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the bundled Redis's password under `redis-password`. */}}
{{- define "sciserve.redisPasswordSecret" -}}
{{- .Values.redis.auth.existingSecret | default (printf "%s-redis" (include "sciserve.fullname" .)) -}}
{{- end -}}

{{/* REDIS_PASSWORD from the bundled Redis's Secret. */}}
{{- define "sciserve.redisPasswordEnv" -}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "sciserve.redisPasswordSecret" . }}
      key: redis-password
{{- end -}}

{{- define "sciserve.redisSecretKey" -}}
{{- if and (not .Values.redis.bundled) .Values.redis.external.existingSecret -}}
{{- .Values.redis.external.key -}}
{{- else -}}
redis-url
{{- end -}}
{{- end -}}

{{- define "sciserve.redisPort" -}}
{{- ternary 6379 .Values.redis.external.port .Values.redis.bundled -}}
{{- end -}}

{{/* Pod-level security: non-root, RuntimeDefault seccomp. */}}
{{- define "sciserve.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsUser }}
fsGroup: {{ .Values.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security: read-only root, no privilege escalation, no capabilities. */}}
{{- define "sciserve.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment every sciserve container shares. */}}
{{- define "sciserve.commonEnv" -}}
- name: SCISERVE_HOST
  value: "0.0.0.0"
- name: HOME
  value: /tmp
- name: XDG_CACHE_HOME
  value: /tmp/cache
- name: HF_HUB_OFFLINE
  value: "1"
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Queue, auth and Redis settings of the gateway, the workers and the API-key Job,
and of nothing else: the Redis URL carries its password. The bundled Redis's URL is
built from REDIS_PASSWORD by Kubernetes' $(VAR) expansion (defined just before it). */}}
{{- define "sciserve.queueEnv" -}}
{{- if .Values.redis.bundled -}}
{{ include "sciserve.redisPasswordEnv" . }}
- name: SCISERVE_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s-redis:6379/0" (include "sciserve.fullname" .) | quote }}
{{- else -}}
- name: SCISERVE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "sciserve.redisSecret" . }}
      key: {{ include "sciserve.redisSecretKey" . }}
{{- end }}
- name: SCISERVE_REDIS_PREFIX
  value: {{ .Values.redis.prefix | quote }}
- name: SCISERVE_ADMIN_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "sciserve.authSecret" . }}
      key: admin-key
{{- end -}}

{{/* SCISERVE_TOOL_URLS: the enabled tool servers' Services, as JSON. */}}
{{- define "sciserve.toolUrls" -}}
{{- $root := . -}}
{{- $urls := dict -}}
{{- if .Values.toolServers.enabled -}}
{{- range $name, $server := .Values.toolServers.servers -}}
{{- if $server.enabled -}}
{{- $_ := set $urls $name (printf "http://%s-tool-%s:%d" (include "sciserve.fullname" $root) $name (int $root.Values.toolServers.port)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $urls -}}
{{- end -}}

{{/* A writable /tmp (the root filesystem is read-only). */}}
{{- define "sciserve.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ . | default "1Gi" }}
{{- end -}}

{{/* OpenTelemetry settings of one component (dict "root" . "service" NAME): the OTLP
endpoint, protocol, sampler and content switch of .Values.tracing; nothing while no
endpoint is set. */}}
{{- define "sciserve.tracingEnv" -}}
{{- $t := .root.Values.tracing -}}
{{- if $t.otlpEndpoint -}}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $t.otlpEndpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $t.protocol | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ .service | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $t.sampler | quote }}
{{- with $t.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
- name: SCISERVE_TRACE_CONTENT
  value: {{ $t.content | quote }}
{{- end -}}
{{- end -}}

{{/* NetworkPolicy egress rules. */}}
{{- define "sciserve.np.collector" -}}
{{- if .Values.tracing.otlpEndpoint -}}
# The OpenTelemetry collector (tracing.otlpEndpoint).
- ports:
    - {protocol: TCP, port: {{ .Values.tracing.port }}}
  {{- with .Values.tracing.collector }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- end }}

{{- define "sciserve.np.dns" -}}
# DNS: Service names must resolve.
- to:
    - namespaceSelector: {}
      podSelector:
        matchLabels: {k8s-app: kube-dns}
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end }}
{{- define "sciserve.np.redis" -}}
{{- if .Values.redis.bundled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "sciserve.selector" (dict "root" . "component" "redis") | nindent 10 }}
  ports:
    - {protocol: TCP, port: 6379}
{{- else }}
{{- if not .Values.redis.external.peers }}
{{- fail "networkPolicy.enabled with an external Redis: set redis.external.peers (where Redis is, e.g. [{ipBlock: {cidr: 10.0.5.10/32}}]) or the pods cannot reach it" }}
{{- end }}
- to:
    {{- toYaml .Values.redis.external.peers | nindent 4 }}
  ports:
    - {protocol: TCP, port: {{ .Values.redis.external.port }}}
{{- end }}
{{- end }}

{{/* Prometheus `job` label values (the monitors below set them). */}}
{{- define "sciserve.job.gateway" -}}{{ include "sciserve.fullname" . }}-gateway{{- end -}}
{{- define "sciserve.job.worker" -}}{{ include "sciserve.fullname" . }}-worker{{- end -}}
{{- define "sciserve.job.tools" -}}{{ include "sciserve.fullname" . }}-tool-server{{- end -}}

{{/* The queue selector KEDA and the rules read: the gateway's scrape in this namespace. */}}
{{- define "sciserve.gatewaySelector" -}}
{namespace="{{ .Release.Namespace }}", job="{{ include "sciserve.job.gateway" . }}"}
{{- end -}}
