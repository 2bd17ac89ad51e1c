{{/* Names ------------------------------------------------------------------------------------ */}}

{{- define "flywheel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flywheel.fullname" -}}
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

{{/* "<fullname>-<suffix>", within the 63 characters of a DNS label. Call with (list $ "suffix"). */}}
{{- define "flywheel.component" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "flywheel.fullname" $root | trunc (int (sub 62 (len (index . 1))))) (index . 1) | trimSuffix "-" -}}
{{- end -}}

{{- define "flywheel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flywheel.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels (the Kubernetes recommended labels). ------------------------------------------------- */}}

{{- define "flywheel.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "flywheel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "flywheel.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/part-of: data-flywheel
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component. Call with (list $ "component"). */}}
{{- define "flywheel.componentLabels" -}}
{{ include "flywheel.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The immutable selector of one component. Call with (list $ "component"). */}}
{{- define "flywheel.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "flywheel.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Images ------------------------------------------------------------------------------------- */}}

{{- define "flywheel.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{/* The flywheel image; call with (list $ overrides) where overrides may set repository/tag. */}}
{{- define "flywheel.image" -}}
{{- $root := index . 0 -}}
{{- $over := index . 1 | default dict -}}
{{- $repository := default $root.Values.image.repository $over.repository -}}
{{- if and $root.Values.image.digest (not $over.tag) -}}
{{- printf "%s@%s" $repository $root.Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default (include "flywheel.imageTag" $root) $over.tag) -}}
{{- end -}}
{{- end -}}

{{/* Connections ---------------------------------------------------------------------------- */}}

{{- define "flywheel.temporalAddress" -}}
{{- if .Values.temporal.bundled.enabled -}}
{{- printf "%s:7233" (include "flywheel.component" (list . "temporal")) -}}
{{- else -}}
{{- .Values.temporal.address -}}
{{- end -}}
{{- end -}}

{{- define "flywheel.temporalUiUrl" -}}
{{- if .Values.temporal.uiUrl -}}
{{- .Values.temporal.uiUrl -}}
{{- else if .Values.temporal.bundled.enabled -}}
{{- printf "http://127.0.0.1:%v" .Values.temporal.bundled.uiPort -}}
{{- end -}}
{{- end -}}

{{- define "flywheel.temporalTlsSecret" -}}
{{- default (include "flywheel.component" (list . "temporal-tls")) .Values.temporal.tls.existingSecret -}}
{{- end -}}

{{- define "flywheel.temporalMtls" -}}
{{- if or (and .Values.temporal.tls.existingSecret .Values.temporal.tls.certKey) .Values.temporal.tls.cert -}}true{{- end -}}
{{- end -}}

{{- define "flywheel.temporalCa" -}}
{{- if or .Values.temporal.tls.ca (and .Values.temporal.tls.existingSecret .Values.temporal.tls.caKey) -}}true{{- end -}}
{{- end -}}

{{- define "flywheel.temporalApiKey" -}}
{{- if or .Values.temporal.apiKey.existingSecret .Values.temporal.apiKey.value -}}true{{- end -}}
{{- end -}}

{{- define "flywheel.elasticsearchApiKey" -}}
{{- if or .Values.elasticsearch.apiKey.existingSecret .Values.elasticsearch.apiKey.value -}}true{{- end -}}
{{- end -}}

{{/* The name of the Secret the chart creates from values (API keys given as `value`). */}}
{{- define "flywheel.secretName" -}}
{{- include "flywheel.component" (list . "secrets") -}}
{{- end -}}

{{/* Whether any secret value is given in values (the chart then creates its Secret). */}}
{{- define "flywheel.hasSecretValues" -}}
{{- $any := or .Values.temporal.apiKey.value .Values.elasticsearch.apiKey.value -}}
{{- range $name, $ref := .Values.apiKeys -}}
{{- if and $ref $ref.value (not $ref.existingSecret) -}}{{- $any = true -}}{{- end -}}
{{- end -}}
{{- if $any -}}true{{- end -}}
{{- end -}}

{{/* Checks that fail the render with a clear message. */}}
{{- define "flywheel.validate" -}}
{{- if and .Values.temporal.bundled.enabled .Values.temporal.address -}}
{{- fail "temporal: set temporal.bundled.enabled=false to use temporal.address (or clear the address to use the bundled dev server)" -}}
{{- end -}}
{{- if not (or .Values.temporal.bundled.enabled .Values.temporal.address) -}}
{{- fail "temporal: set temporal.address (host:port of your Temporal or Temporal Cloud) or temporal.bundled.enabled=true" -}}
{{- end -}}
{{- if and .Values.temporal.tls.cert (not .Values.temporal.tls.key) -}}
{{- fail "temporal.tls: cert needs key (the client certificate's private key)" -}}
{{- end -}}
{{- if and .Values.temporal.tls.existingSecret (or .Values.temporal.tls.cert .Values.temporal.tls.ca) -}}
{{- fail "temporal.tls: give either existingSecret (with certKey/keyKey/caKey) or cert/key/ca, not both" -}}
{{- end -}}
{{- $es := .Values.elasticsearch -}}
{{- if eq (len (compact (list $es.bundled.enabled $es.url $es.urlSecret.name))) 0 -}}
{{- fail "elasticsearch: set elasticsearch.url (or urlSecret.name) to your cluster, or elasticsearch.bundled.enabled=true" -}}
{{- end -}}
{{- if gt (len (compact (list $es.bundled.enabled $es.url $es.urlSecret.name))) 1 -}}
{{- fail "elasticsearch: use one of elasticsearch.bundled.enabled, elasticsearch.url, elasticsearch.urlSecret.name" -}}
{{- end -}}
{{- $mongo := .Values.mongodb -}}
{{- if eq (len (compact (list $mongo.bundled.enabled $mongo.url $mongo.urlSecret.name))) 0 -}}
{{- fail "mongodb: set mongodb.url (or urlSecret.name) to your server, or mongodb.bundled.enabled=true" -}}
{{- end -}}
{{- if gt (len (compact (list $mongo.bundled.enabled $mongo.url $mongo.urlSecret.name))) 1 -}}
{{- fail "mongodb: use one of mongodb.bundled.enabled, mongodb.url, mongodb.urlSecret.name" -}}
{{- end -}}
{{- if not (or .Values.artifacts.uri .Values.artifacts.persistence.enabled) -}}
{{- fail "artifacts: every worker must reach the same store: set artifacts.uri (s3://...) or artifacts.persistence.enabled=true" -}}
{{- end -}}
{{- range .Values.setup.schedules -}}
{{- if and (eq (default "main" .pool) "gpu") (not $.Values.gpuWorker.enabled) -}}
{{- fail (printf "setup.schedules: %s uses pool gpu, but gpuWorker.enabled is false" .workload) -}}
{{- end -}}
{{- end -}}
{{- range $key := list "temporal" "data_dir" "log_store_url" "log_store_api_key_env" "result_store_url" "mongodb_db" "artifact_store_uri" "nmp_config" -}}
{{- if hasKey $.Values.config $key -}}
{{- fail (printf "config.%s is set by the chart from its own values (see values.yaml): remove it from config" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The flywheel YAML (one file for every pod): `config` plus the connections from values. */}}
{{- define "flywheel.configYaml" -}}
{{- $v := .Values -}}
{{- $temporal := dict "address" (include "flywheel.temporalAddress" .) "namespace" $v.temporal.namespace "task_queue" $v.temporal.taskQueue -}}
{{- if $v.temporal.tls.enabled -}}{{- $_ := set $temporal "tls" true -}}{{- end -}}
{{- with include "flywheel.temporalUiUrl" . -}}{{- $_ := set $temporal "ui_url" . -}}{{- end -}}
{{- if $v.temporal.tls.serverName -}}{{- $_ := set $temporal "tls_server_name" $v.temporal.tls.serverName -}}{{- end -}}
{{- if include "flywheel.temporalMtls" . -}}
{{- $_ := set $temporal "tls_client_cert_path" "/etc/flywheel/temporal-tls/tls.crt" -}}
{{- $_ := set $temporal "tls_client_key_path" "/etc/flywheel/temporal-tls/tls.key" -}}
{{- end -}}
{{- if include "flywheel.temporalCa" . -}}
{{- $_ := set $temporal "tls_server_ca_path" "/etc/flywheel/temporal-tls/ca.crt" -}}
{{- end -}}
{{- if include "flywheel.temporalApiKey" . -}}{{- $_ := set $temporal "api_key_env" "TEMPORAL_API_KEY" -}}{{- end -}}
{{- $managed := dict "data_dir" "/var/lib/flywheel" "temporal" $temporal "mongodb_db" $v.mongodb.database -}}
{{- if $v.elasticsearch.bundled.enabled -}}
{{- $_ := set $managed "log_store_url" (printf "http://%s:9200/%s" (include "flywheel.component" (list . "elasticsearch")) $v.elasticsearch.index) -}}
{{- else if $v.elasticsearch.url -}}
{{- $_ := set $managed "log_store_url" (printf "%s/%s" (trimSuffix "/" $v.elasticsearch.url) $v.elasticsearch.index) -}}
{{- end -}}
{{- if include "flywheel.elasticsearchApiKey" . -}}{{- $_ := set $managed "log_store_api_key_env" "ELASTICSEARCH_API_KEY" -}}{{- end -}}
{{- if $v.mongodb.bundled.enabled -}}
{{- $_ := set $managed "result_store_url" (printf "mongodb://%s:27017" (include "flywheel.component" (list . "mongodb"))) -}}
{{- else if $v.mongodb.url -}}
{{- $_ := set $managed "result_store_url" $v.mongodb.url -}}
{{- end -}}
{{- $_ := set $managed "artifact_store_uri" (default "file:///var/lib/flywheel/artifacts" $v.artifacts.uri) -}}
{{- if $v.nemo.enabled -}}
{{- $_ := set $managed "nmp_config" (dict "nemo_base_url" $v.nemo.baseUrl "nim_base_url" $v.nemo.nimBaseUrl "datastore_base_url" $v.nemo.datastoreBaseUrl "nmp_namespace" $v.nemo.namespace) -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite (deepCopy $v.config) $managed) -}}
{{- end -}}

{{/* Pod pieces -------------------------------------------------------------------------------- */}}

{{/* Environment every flywheel pod gets: the config file and how to reach Temporal. */}}
{{- define "flywheel.temporalEnv" -}}
- name: FLYWHEEL_CONFIG
  value: /etc/flywheel/config/flywheel.yaml
{{- if include "flywheel.temporalApiKey" . }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ default (include "flywheel.secretName" .) .Values.temporal.apiKey.existingSecret }}
      key: {{ ternary .Values.temporal.apiKey.key "TEMPORAL_API_KEY" (not (empty .Values.temporal.apiKey.existingSecret)) }}
{{- end }}
{{- if .Values.caBundle.configMap }}
- name: SSL_CERT_FILE
  value: /etc/flywheel/ca/ca.crt
- name: REQUESTS_CA_BUNDLE
  value: /etc/flywheel/ca/ca.crt
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Environment of the workers: the API keys and store credentials the activities read. */}}
{{- define "flywheel.secretEnv" -}}
{{- range $name, $ref := .Values.apiKeys }}
{{- if and $ref (or $ref.existingSecret $ref.value) }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ default (include "flywheel.secretName" $) $ref.existingSecret }}
      key: {{ ternary (default $name $ref.key) $name (not (empty $ref.existingSecret)) }}
{{- end }}
{{- end }}
{{- if include "flywheel.elasticsearchApiKey" . }}
- name: ELASTICSEARCH_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ default (include "flywheel.secretName" .) .Values.elasticsearch.apiKey.existingSecret }}
      key: {{ ternary .Values.elasticsearch.apiKey.key "ELASTICSEARCH_API_KEY" (not (empty .Values.elasticsearch.apiKey.existingSecret)) }}
{{- end }}
{{- with .Values.elasticsearch.urlSecret.name }}
- name: FLYWHEEL_LOG_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.elasticsearch.urlSecret.key }}
{{- end }}
{{- with .Values.mongodb.urlSecret.name }}
- name: FLYWHEEL_RESULT_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.mongodb.urlSecret.key }}
{{- end }}
{{- end -}}

{{/* Volumes every flywheel pod mounts (config, Temporal TLS, CA bundle, writable dirs). */}}
{{- define "flywheel.commonVolumes" -}}
- name: config
  configMap:
    name: {{ include "flywheel.component" (list . "config") }}
- name: home
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if or (include "flywheel.temporalMtls" .) (include "flywheel.temporalCa" .) }}
- name: temporal-tls
  secret:
    secretName: {{ include "flywheel.temporalTlsSecret" . }}
    defaultMode: 0440
    items:
      {{- if include "flywheel.temporalMtls" . }}
      - key: {{ ternary .Values.temporal.tls.certKey "tls.crt" (not (empty .Values.temporal.tls.existingSecret)) }}
        path: tls.crt
      - key: {{ ternary .Values.temporal.tls.keyKey "tls.key" (not (empty .Values.temporal.tls.existingSecret)) }}
        path: tls.key
      {{- end }}
      {{- if include "flywheel.temporalCa" . }}
      - key: {{ ternary .Values.temporal.tls.caKey "ca.crt" (not (empty .Values.temporal.tls.existingSecret)) }}
        path: ca.crt
      {{- end }}
{{- end }}
{{- with .Values.caBundle.configMap }}
- name: ca-bundle
  configMap:
    name: {{ . }}
    items:
      - key: {{ $.Values.caBundle.key }}
        path: ca.crt
{{- end }}
{{- end -}}

{{- define "flywheel.commonVolumeMounts" -}}
- name: config
  mountPath: /etc/flywheel/config
  readOnly: true
- name: home
  mountPath: /var/lib/flywheel
- name: tmp
  mountPath: /tmp
{{- if or (include "flywheel.temporalMtls" .) (include "flywheel.temporalCa" .) }}
- name: temporal-tls
  mountPath: /etc/flywheel/temporal-tls
  readOnly: true
{{- end }}
{{- if .Values.caBundle.configMap }}
- name: ca-bundle
  mountPath: /etc/flywheel/ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* Annotations that roll the pods when their configuration or chart-made secrets change. */}}
{{- define "flywheel.checksums" -}}
checksum/config: {{ include "flywheel.configYaml" . | sha256sum }}
checksum/secrets: {{ include (print .Template.BasePath "/secrets.yaml") . | sha256sum }}
{{- end -}}
