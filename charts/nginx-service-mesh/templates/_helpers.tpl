{{/* The method open-source NGINX runs: least_time ones need NGINX Plus. */}}
{{- define "nginx-service-mesh.lbMethod" -}}
{{- $method := .Values.nginxLBMethod -}}
{{- if hasPrefix "least_time" $method -}}
least_conn
{{- else if hasPrefix "random two least_time" $method -}}
random two least_conn
{{- else -}}
{{ $method }}
{{- end -}}
{{- end -}}

{{/* Rules the values schema cannot state; the same ones deploy applies to its flags. */}}
{{- define "nginx-service-mesh.validate" -}}
{{- $registry := .Values.registry -}}
{{- if and $registry.key (or $registry.username $registry.password) -}}
{{- fail "invalid configuration: cannot set both registry.key and registry.username/registry.password" -}}
{{- end -}}
{{- if and (or $registry.username $registry.password) (not (and $registry.username $registry.password)) -}}
{{- fail "invalid configuration: both registry.username and registry.password must be set" -}}
{{- end -}}
{{- if and .Values.telemetry (not .Values.telemetry.exporters) -}}
{{- fail "invalid configuration: telemetry needs exporters.otlp.host and exporters.otlp.port" -}}
{{- end -}}
{{- $ca := trimSuffix "h" .Values.mtls.caTTL | atoi -}}
{{- $svid := .Values.mtls.svidTTL -}}
{{- $svidMinutes := hasSuffix "m" $svid | ternary (trimSuffix "m" $svid | atoi) (mul (trimSuffix "h" $svid | atoi) 60) -}}
{{- if lt (mul $ca 60) (mul $svidMinutes 6) -}}
{{- fail (printf "invalid configuration: mtls.caTTL (%s) must be at least 6 times mtls.svidTTL (%s), so that a new CA reaches every workload before it signs" .Values.mtls.caTTL $svid) -}}
{{- end -}}
{{- end -}}
