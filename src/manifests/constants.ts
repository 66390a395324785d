// Every NGINX Service Mesh literal the product mirrors is defined here, once.

/** Name of the executable, as users type it. */
export const CLI_NAME = 'nginx-meshctl';

/** Namespace the control plane is deployed into unless -n/--namespace says otherwise. */
export const DEFAULT_MESH_NAMESPACE = 'nginx-mesh';

/** Default -t/--timeout for talking to the mesh (NSM: 5s). */
export const DEFAULT_MESH_TIMEOUT_MS = 5_000;

/** The controller's Deployment and Service name. */
export const CONTROLLER_NAME = 'nginx-mesh-controller';

/** Port on the controller Service that answers GET /version with component versions. */
export const CONTROLLER_VERSION_PORT = 8082;
/**
 * Secret in the mesh namespace holding the token GET /sidecars on CONTROLLER_VERSION_PORT asks
 * for (every tenant's pods and errors): whoever RBAC lets read it may read the report, and no pod
 * that merely reaches the controller's address can. The controller creates it.
 */
export const CONTROLLER_REPORT_SECRET_NAME = 'nginx-mesh-controller-report';
/** Key of the token in CONTROLLER_REPORT_SECRET_NAME. */
export const CONTROLLER_REPORT_TOKEN_KEY = 'token';
/**
 * Request header carrying that token. Not Authorization: the API server's service proxy strips
 * that one, and passes this one on.
 */
export const CONTROLLER_REPORT_TOKEN_HEADER = 'x-nginx-mesh-report-token';
/** Where the controller keeps its SVID (svid.pem, bundle.crt) for NATS, in memory. */
export const CONTROLLER_SVID_DIR = '/var/run/nginx-mesh/svid';

/** Environment variable naming the kubeconfig file, as kubectl reads it. */
export const KUBECONFIG_ENV = 'KUBECONFIG';

/** Default bind address of a role's /healthz and /readyz server (controller-runtime's port). */
export const DEFAULT_HEALTH_PROBE_BIND_ADDRESS = ':8081';

/** How long a role may take to stop after SIGTERM before it is abandoned. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * How long a sidecar keeps serving after SIGTERM. A deleted pod leaves its Service's endpoints at
 * once, but its peers' sidecars route to it until the controller's next configuration reaches
 * them (a second, about); a pod whose proxy had stopped in that time made their connections to
 * its address wait for a timeout. Well inside the shutdown timeout, with nginx's own stop after.
 */
export const DEFAULT_SIDECAR_DRAIN_MS = 3_000;

/**
 * Registry of the mesh images unless --registry-server says otherwise: `localhost`, the name
 * the images built on a machine carry (scripts/build-images.sh). The project publishes no
 * images, and NGINX Service Mesh's registry holds NGINX's closed ones, not these.
 */
export const DEFAULT_REGISTRY_SERVER = 'localhost';

/** Image names of the data plane. */
export const SIDECAR_IMAGE_NAME = 'nginx-mesh-sidecar';
export const INIT_IMAGE_NAME = 'nginx-mesh-init';

// ---- Sidecar injection (NSM's labels, annotations, container names and ports) ----

/** Pod or Namespace label that opts in to (enabled) or out of (disabled) injection. */
export const AUTO_INJECT_LABEL = 'injector.nsm.nginx.com/auto-inject';
/** Value of AUTO_INJECT_LABEL that blocks injection of a pod. */
export const AUTO_INJECT_DISABLED = 'disabled';
/** Annotation marking an injected pod; webhooks and re-injection skip pods that carry it. */
export const INJECTION_STATUS_ANNOTATION = 'injector.nsm.nginx.com/status';
/** Value of INJECTION_STATUS_ANNOTATION on injected pods. */
export const INJECTION_STATUS_INJECTED = 'injected';
/** Prefix of the pod label naming its owner: nsm.nginx.com/<ownerkind>: <ownerName>. */
export const OWNER_LABEL_PREFIX = 'nsm.nginx.com/';
/** Service annotation choosing the load-balancing method of that Service's upstream. */
export const LB_METHOD_ANNOTATION = 'config.nsm.nginx.com/lb-method';
/** Label on an EndpointSlice naming the Service it belongs to. */
export const ENDPOINT_SLICE_SERVICE_LABEL = 'kubernetes.io/service-name';
/** Label the Deployment controller puts on pods and on the ReplicaSet "<deployment>-<hash>". */
export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
/** Namespace of the cluster's own components; the mesh never acts on it. */
export const KUBE_SYSTEM_NAMESPACE = 'kube-system';
/** Per-pod mTLS mode override (off, permissive, strict). */
export const MTLS_MODE_ANNOTATION = 'config.nsm.nginx.com/mtls-mode';
/** Inbound ports the redirect leaves alone, as a comma list. */
export const IGNORE_INCOMING_PORTS_ANNOTATION = 'config.nsm.nginx.com/ignore-incoming-ports';
/** Outbound ports the redirect leaves alone, as a comma list. */
export const IGNORE_OUTGOING_PORTS_ANNOTATION = 'config.nsm.nginx.com/ignore-outgoing-ports';
/** Per-pod nginx client_max_body_size (e.g. 0, 64k, 10m). */
export const CLIENT_MAX_BODY_SIZE_ANNOTATION = 'config.nsm.nginx.com/client-max-body-size';
/** "true" sends traffic for destinations outside the mesh to the ingress controller's egress. */
export const DEFAULT_EGRESS_ALLOWED_ANNOTATION = 'config.nsm.nginx.com/default-egress-allowed';

/** Name of the init container that installs the traffic redirect. */
export const INIT_CONTAINER_NAME = 'nginx-mesh-init';
/** Name of the sidecar container (agent + nginx). */
export const SIDECAR_CONTAINER_NAME = 'nginx-mesh-sidecar';
/** UID the sidecar runs as; the redirect exempts this UID's traffic. */
export const SIDECAR_UID = 2102;
/**
 * Environment the sidecar's container fixes for the agent. MALLOC_ARENA_MAX=1: glibc gives
 * every thread that allocates (V8's compiler and collector workers, libuv's pool) an arena of
 * its own, whose freed memory stays resident; the agent's allocations are few and mostly on
 * its one JavaScript thread, and one arena saves about 0.7 MiB per pod at no measured cost.
 */
export const SIDECAR_AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1' };

/** Sidecar port for Prometheus metrics and /readyz; never redirected. */
export const SIDECAR_METRICS_PORT = 8887;
/** Sidecar port receiving rewritten kubelet HTTP probes; never redirected. */
export const SIDECAR_HEALTH_HTTP_PORT = 8895;
/** Sidecar port receiving rewritten kubelet HTTPS probes; never redirected. */
export const SIDECAR_HEALTH_HTTPS_PORT = 8896;
/** Port all outbound TCP is redirected to. */
export const SIDECAR_OUTBOUND_REDIRECT_PORT = 8900;
/** Port all inbound TCP is redirected to. */
export const SIDECAR_INBOUND_REDIRECT_PORT = 8901;
/** Sidecar's inbound HTTP server for mTLS connections (NSM's incoming). */
export const SIDECAR_INBOUND_HTTP_PORT = 8888;
/** Sidecar's outbound HTTP server; the outbound redirect hands it every HTTP destination. */
export const SIDECAR_OUTBOUND_HTTP_PORT = 8889;
/** Sidecar's inbound HTTP server for plaintext connections (NSM's incomingPermissive). */
export const SIDECAR_INBOUND_HTTP_PLAIN_PORT = 8890;
/** Sidecar's inbound HTTP/2 server (gRPC, h2c) for mTLS connections (NSM's incomingGrpc). */
export const SIDECAR_INBOUND_HTTP2_PORT = 8891;
/** Sidecar's outbound HTTP/2 server (gRPC, h2c); the app speaks h2c to it (NSM's outgoingGrpc). */
export const SIDECAR_OUTBOUND_HTTP2_PORT = 8892;
/** Sidecar's inbound HTTP/2 server for plaintext connections (NSM's incomingGrpcPermissive). */
export const SIDECAR_INBOUND_HTTP2_PLAIN_PORT = 8893;
/**
 * Sidecar's server for traffic to destinations outside the mesh that strict mTLS refuses (NSM's
 * "destination not in mesh"): HTTP gets 403 naming the reason, anything else is closed.
 */
export const SIDECAR_EGRESS_REFUSED_PORT = 8902;
/**
 * The Service label (dst_service) of traffic to destinations outside the mesh: one value however
 * many destinations, with empty dst_namespace and dst_pod.
 */
export const EGRESS_SERVICE = 'egress';
/** Sidecar's inbound TCP server terminating mTLS (NSM's incomingTcp). */
export const SIDECAR_INBOUND_TCP_PORT = 8904;
/** Sidecar's sink for TCP connections access control refuses: it closes them at once. */
export const SIDECAR_INBOUND_TCP_DENY_PORT = 8905;
/** Sidecar's outbound TCP server that opens mTLS connections to meshed endpoints. */
export const SIDECAR_OUTBOUND_TCP_PORT = 8906;
/** Sidecar's inbound TCP server for plaintext connections (NSM's incomingTcpPermissive). */
export const SIDECAR_INBOUND_TCP_PLAIN_PORT = 8907;
/**
 * Directory, under the agent's run directory, of the unix socket where the sidecar's nginx serves
 * its request counters to the agent (ngx_mesh's mesh_stats_dump): a POST to SIDECAR_STATS_PATH
 * takes, and so empties, them. Not a TCP port: app containers share the pod's loopback and could
 * take them too. The agent keeps the directory mode 0700, so only the sidecar's uid enters it,
 * and the run directory's volume is mounted in the sidecar alone.
 */
export const SIDECAR_STATS_DIR = 'stats';
/**
 * The location on the stats socket where a PUT makes nginx read its members file again
 * (ngx_mesh's mesh_members_update): endpoints that changed without a reload.
 */
export const SIDECAR_MEMBERS_PATH = '/members';
/** The socket's name in SIDECAR_STATS_DIR. */
export const SIDECAR_STATS_SOCKET = 'nginx.sock';
export const SIDECAR_STATS_PATH = '/stats';
/** nginx's shared-memory zones of request counters: HTTP requests and TCP connections. */
export const SIDECAR_STATS_HTTP_ZONE = 'mesh_http';
export const SIDECAR_STATS_TCP_ZONE = 'mesh_tcp';
/** Size of each zone: about 3,000 series at 300 bytes each, far beyond one take's worth. */
export const SIDECAR_STATS_ZONE_SIZE = '1m';
/**
 * The zone of span records (ngx_mesh's mesh_trace_zone) the agent takes with a POST to
 * SIDECAR_TRACE_PATH on the stats socket, once a second while tracing is on. 4 MiB holds about
 * 8,000 spans: 8 seconds at 1,000 sampled requests a second.
 */
export const SIDECAR_TRACE_ZONE = 'mesh_trace';
export const SIDECAR_TRACE_ZONE_SIZE = '4m';
export const SIDECAR_TRACE_PATH = '/traces';
/**
 * Name, in the agent's run directory, of the FIFO nginx writes its access log to (mode 0600, the
 * sidecar's uid): the agent reads it and copies every line to its own stdout, the container's
 * log, which nginx cannot open itself when it is a socket.
 */
export const SIDECAR_ACCESS_LOG_FIFO = 'access.log';
/** First and last port of the range the sidecar reserves for its own listeners (NSM tech specs). */
export const SIDECAR_RESERVED_PORT_FIRST = 8886;
export const SIDECAR_RESERVED_PORT_LAST = 8909;
/** Path prefix of rewritten probes: /health-redirects/<container>/<liveness|readiness|startup>. */
export const HEALTH_REDIRECTS_PATH_PREFIX = '/health-redirects';
/**
 * Path on SIDECAR_METRICS_PORT that answers 200 once the proxy is ready for the mesh's traffic:
 * it listens and runs the controller's configuration (or waited --config-wait for it in vain).
 */
export const SIDECAR_READY_PATH = '/readyz';
/** Path on SIDECAR_METRICS_PORT that answers 200 as soon as the proxy listens, configured or not. */
export const SIDECAR_PROXY_READY_PATH = '/readyz/proxy';

/** Projected ServiceAccount token volume with which the sidecar proves its identity. */
export const IDENTITY_VOLUME_NAME = 'nginx-mesh-identity';
/** Where the identity token volume is mounted in the sidecar. */
export const IDENTITY_MOUNT_PATH = '/var/run/secrets/nginx-mesh';
/** File name of the token inside IDENTITY_MOUNT_PATH. */
export const IDENTITY_TOKEN_PATH = 'token';
/** Audience of the identity token; the registrar accepts only tokens for it. */
export const IDENTITY_TOKEN_AUDIENCE = 'nginx-mesh-registrar';
/** Lifetime requested for the identity token; the kubelet rotates it before expiry. */
export const IDENTITY_TOKEN_EXPIRATION_SECONDS = 3600;
/** In-memory volume for the agent's rendered nginx config and certificates. */
export const SIDECAR_CONFIG_VOLUME_NAME = 'nginx-mesh-config';
/** Where SIDECAR_CONFIG_VOLUME_NAME is mounted in the sidecar. */
export const SIDECAR_CONFIG_MOUNT_PATH = '/etc/nginx-mesh';

// ---- Traffic redirect (the init role) ----

/** DNS: outbound TCP to this port is never redirected (NSM's default ignored port). */
export const DNS_PORT = 53;

/** Service in front of the controller's injection webhook, and the webhook's path. */
export const WEBHOOK_SERVICE_NAME = 'nginx-mesh-webhook';
export const WEBHOOK_PATH = '/inject';

/** Port the controller serves the injection webhook on. */
export const WEBHOOK_PORT = 9443;

/** The MutatingWebhookConfiguration that sends pod creations to the controller (NSM's name). */
export const WEBHOOK_CONFIGURATION_NAME = 'sidecar-injector-webhook-cfg.internal.builtin.nsm.nginx';

/** Secret holding the webhook's serving certificate and its CA while the controller manages them. */
export const WEBHOOK_TLS_SECRET_NAME = 'nginx-mesh-webhook-tls';

/** ConfigMap holding the full mesh configuration, and its key (NSM 2.0). */
export const MESH_CONFIG_MAP_NAME = 'meshconfig';
export const MESH_CONFIG_MAP_KEY = 'meshconfig.json';

// ---- Mesh configuration (deploy) ----

/** Image name of the control plane (controller, registrar and metrics roles). */
export const CONTROLLER_IMAGE_NAME = 'nginx-mesh-controller';
/** Secret with the registry credentials, referenced by every pod the mesh creates or injects. */
export const REGISTRY_KEY_SECRET_NAME = 'nginx-mesh-registry-key';
/** Docker user name that goes with a Google JSON key file (--registry-key). */
export const REGISTRY_KEY_USERNAME = '_json_key';
/** Key of MESH_CONFIG_MAP_NAME that turns every sidecar transparent while the mesh is removed. */
export const MESH_CONFIG_MAP_TRANSPARENT_KEY = 'transparent';
/** API group and version of the MeshConfig and MeshConfigClass resources. */
export const MESH_CONFIG_API_VERSION = 'nsm.nginx.com/v1alpha2';
/** The one MeshConfig object, in the mesh namespace, that holds the runtime configuration. */
export const MESH_CONFIG_RESOURCE_NAME = 'nginx-mesh-config';
/** Suffix of the MeshConfigClass name: <mesh namespace>-meshconfig-class. */
export const MESH_CONFIG_CLASS_SUFFIX = '-meshconfig-class';
/** controllerName of the MeshConfigClass; the controller only acts on MeshConfigs of its class. */
export const MESH_CONFIG_CONTROLLER_NAME = 'nsm.nginx.com/nginx-mesh-controller';

/** The Gateway API controllerName this mesh writes in the status of the routes it serves. */
export const GATEWAY_CONTROLLER_NAME = 'nsm.nginx.com/nginx-mesh';
/** The GatewayClass deploy installs: Gateways of this class are served by the mesh's gateways. */
export const GATEWAY_CLASS_NAME = 'nginx-mesh';

/** The Gateway API release whose CRDs deploy installs when absent, and whose suite runs. */
export const GATEWAY_API_VERSION = 'v1.6.3';

/** Label on every object the mesh installs; remove and supportpkg find them by it. */
export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
export const PART_OF_VALUE = 'nginx-service-mesh';
/** managed-by value on the objects of a mesh installed from the Helm chart (Helm's .Release.Service). */
export const HELM_MANAGED_BY_VALUE = 'Helm';
/** Annotation Helm puts on every object of a release, naming the release. */
export const HELM_RELEASE_NAME_ANNOTATION = 'meta.helm.sh/release-name';
/** Labels of the Secrets in which Helm records a release: owner=helm, name=<release>. */
export const HELM_RELEASE_OWNER_LABEL = 'owner';
export const HELM_RELEASE_OWNER_VALUE = 'helm';
export const HELM_RELEASE_NAME_LABEL = 'name';

// ---- Sidecar metrics (the contract between the agent and the metrics role; docs/metrics.md) ----

/** Counter of HTTP requests a sidecar proxied, by direction, peer and status class. */
export const SIDECAR_REQUESTS_METRIC = 'nginx_mesh_requests_total';
/** Histogram of the time from request to last response byte, in milliseconds. */
export const SIDECAR_DURATION_METRIC = 'nginx_mesh_request_duration_milliseconds';
/** Upper bounds (ms) of the duration histogram's buckets; +Inf is implied. */
export const SIDECAR_DURATION_BUCKETS_MS: readonly number[] = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000,
];
/** Counter of TCP connections a sidecar proxied, counted when they close; labels as the requests'. */
export const SIDECAR_TCP_CONNECTIONS_METRIC = 'nginx_mesh_tcp_connections_total';
/** Histogram of how long TCP connections lasted, in milliseconds (SIDECAR_DURATION_BUCKETS_MS). */
export const SIDECAR_TCP_DURATION_METRIC = 'nginx_mesh_tcp_connection_duration_milliseconds';
/** Counter of the bytes the sidecar sent to the client of TCP connections. */
export const SIDECAR_TCP_SENT_BYTES_METRIC = 'nginx_mesh_tcp_sent_bytes_total';
/** Counter of the bytes the sidecar received from the client of TCP connections. */
export const SIDECAR_TCP_RECEIVED_BYTES_METRIC = 'nginx_mesh_tcp_received_bytes_total';
/** Label: "inbound" (the pod served the request) or "outbound" (the pod sent it). */
export const METRIC_LABEL_DIRECTION = 'direction';
export const METRIC_DIRECTION_INBOUND = 'inbound';
export const METRIC_DIRECTION_OUTBOUND = 'outbound';
/** Label: the response's status class, 1xx to 5xx (NSM's `code` on nginxplus_upstream_server_responses). */
export const METRIC_LABEL_CODE = 'code';
/** Status class that counts as a failure in SMI's failure_count; every other class is a success. */
export const METRIC_FAILURE_CODE = '5xx';
/** Label prefix of the peer that sent an inbound request (src_namespace, src_pod, src_deployment…). */
export const METRIC_SOURCE_PREFIX = 'src_';
/** Label prefix of the peer an outbound request went to (NSM's dst_namespace, dst_pod, dst_deployment…). */
export const METRIC_DESTINATION_PREFIX = 'dst_';
/**
 * Workload labels: unprefixed they name the scraped pod (set by the scrape configuration); with a
 * prefix, the peer (set by the agent). An owner label holds the owning workload's name.
 */
export const METRIC_LABEL_NAMESPACE = 'namespace';
export const METRIC_LABEL_POD = 'pod';
export const METRIC_OWNER_LABELS = ['deployment', 'statefulset', 'daemonset'] as const;
/** Prometheus job that scrapes the sidecars (NSM's job name). */
export const SIDECAR_SCRAPE_JOB = 'nginx-mesh-sidecars';
/** Path of the sidecar's Prometheus exposition on SIDECAR_METRICS_PORT. */
export const SIDECAR_METRICS_PATH = '/metrics';

// ---- The metrics role: SMI Traffic Metrics as an aggregated API ----

/** The metrics Deployment, its ServiceAccount and container. */
export const METRICS_NAME = 'nginx-mesh-metrics';
/** Service in front of the metrics API (port 443 → METRICS_API_PORT), named by the APIService. */
export const METRICS_SERVICE_NAME = 'nginx-mesh-metrics-svc';
/** Port the metrics role serves the aggregated API on (HTTPS). */
export const METRICS_API_PORT = 8080;
/** API group and version of SMI Traffic Metrics. */
export const TRAFFIC_METRICS_GROUP = 'metrics.smi-spec.io';
export const TRAFFIC_METRICS_VERSION = 'v1alpha1';
/** The APIService that routes TRAFFIC_METRICS_GROUP to METRICS_SERVICE_NAME. */
export const METRICS_API_SERVICE_NAME = `${TRAFFIC_METRICS_VERSION}.${TRAFFIC_METRICS_GROUP}`;
/** Secret holding the metrics API's serving certificate and its CA while the role manages them. */
export const METRICS_TLS_SECRET_NAME = 'nginx-mesh-metrics-tls';
/** Window of a TrafficMetrics answer unless the request's ?t= says otherwise (SMI's default). */
export const DEFAULT_TRAFFIC_METRICS_WINDOW_MS = 30_000;
/**
 * Longest window a TrafficMetrics request may ask for: every request runs five range queries
 * over every sidecar's series, so one request with a window of days would load Prometheus with
 * all the samples it keeps. An hour covers `top` and dashboards; longer views belong to Grafana.
 */
export const MAX_TRAFFIC_METRICS_WINDOW_MS = 3_600_000;

// ---- Bounds on what users hand in ----

/**
 * Deepest nesting of objects and arrays in a YAML or JSON document the mesh reads from users
 * (inject's files and stdin, the webhook's AdmissionReview, deploy's configuration files). Real
 * manifests, CRDs with their schemas included, stay well under it; far beyond it, the code that
 * walks a document would overflow the stack.
 */
export const MAX_DOCUMENT_DEPTH = 512;
/** Largest input inject reads: far beyond any manifest bundle, short of exhausting memory. */
export const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;
/** ConfigMap the API server publishes its front-proxy (requestheader) client CA in. */
export const EXTENSION_API_AUTH_CONFIG_MAP = 'extension-apiserver-authentication';
export const EXTENSION_API_AUTH_NAMESPACE = 'kube-system';

// ---- The control plane as deploy installs it ----

/** Field manager of every object deploy and upgrade apply (server-side apply). */
export const FIELD_MANAGER = 'nginx-meshctl';
/** Port of every control-plane role's /healthz and /readyz (DEFAULT_HEALTH_PROBE_BIND_ADDRESS). */
export const CONTROL_PLANE_HEALTH_PORT = 8081;
/**
 * The readiness probe of a role whose Service serves while part of its job waits (the
 * controller's webhook while NATS is away); its /readyz still says whether it does its job.
 */
export const READY_SERVING_PATH = '/readyz/serving';
/** Secret with the upstream CA the registrar chains to (--mtls-upstream-ca-conf). */
export const UPSTREAM_CA_SECRET_NAME = 'nginx-mesh-upstream-ca';
/** File names of the upstream CA inside UPSTREAM_CA_SECRET_NAME (NGINX Service Mesh's keys). */
export const UPSTREAM_CA_CERT_KEY = 'upstreamCA.crt';
export const UPSTREAM_CA_KEY_KEY = 'upstreamCA.key';
export const UPSTREAM_CA_BUNDLE_KEY = 'upstreamBundle.crt';
/** NATS: Deployment, Service and ServiceAccount names, ports and image (NGINX Service Mesh's). */
export const NATS_NAME = 'nats-server';
export const NATS_SERVICE_ACCOUNT_NAME = 'nats';
export const NATS_CLIENT_PORT = 4222;
export const NATS_MONITOR_PORT = 8222;
/**
 * NATS's image: upstream's `nats:2.9` (its scratch variant; the pod needs no shell), or with
 * --disable-public-images the same name in the mesh's registry, where scripts/build-images.sh
 * puts Debian's build of NATS 2.9.
 */
export const NATS_IMAGE = 'nats:2.9';
/** Subject the controller publishes mesh configuration on and agents subscribe to (NSM's). */
export const NATS_CONFIG_SUBJECT = 'nginx.nsm.agent.config';
/** Subject agents publish their subscriptions and acknowledgements on (NSM's). */
export const NATS_SUBSCRIPTION_SUBJECT = 'nginx.nsm.agent.subscription';
/** Subject a (re)started controller publishes on to have every agent subscribe again (NSM's). */
export const NATS_PING_SUBJECT = 'nginx.nsm.ctlr.ping';
/** Container that obtains the NATS server's SVID and has NATS reload it on renewal (NSM's name). */
export const CERT_RELOADER_NAME = 'nginx-mesh-cert-reloader';
/** Key of a serving-certificate Secret that holds its CA (webhook and metrics API). */
export const TLS_SECRET_CA_KEY = 'ca.crt';

// ---- Registrar (the mesh's SPIFFE certificate authority) ----

/** The registrar's Deployment, ServiceAccount and Service name. */
export const REGISTRAR_NAME = 'nginx-mesh-registrar';
/** Port of the registrar's HTTPS API, where workloads obtain their SVIDs. */
export const REGISTRAR_API_PORT = 8443;
/** Path of the registrar's SVID endpoint: POST {"csr": PEM} with the identity token as Bearer. */
export const REGISTRAR_SVID_PATH = '/v1/svid';
/** Secret in the mesh namespace holding the CA keys and certificates every replica shares. */
export const REGISTRAR_CA_SECRET_NAME = 'nginx-mesh-registrar-ca';
/** Key of REGISTRAR_CA_SECRET_NAME holding the authorities, oldest first, as JSON. */
export const REGISTRAR_CA_SECRET_KEY = 'authorities.json';
/** ConfigMap with the mesh's trust bundle, published in every namespace for the sidecars. */
export const TRUST_BUNDLE_CONFIG_MAP_NAME = 'nginx-mesh-bundle';
/** Key of TRUST_BUNDLE_CONFIG_MAP_NAME holding the trusted roots as PEM. */
export const TRUST_BUNDLE_KEY = 'bundle.crt';
/** SPIFFE trust domain unless --trust-domain says otherwise (NSM's default). */
export const DEFAULT_TRUST_DOMAIN = 'example.org';
/** TokenReview user extras naming the pod a projected token is bound to. */
export const TOKEN_POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const TOKEN_POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
/** Files the SVID client writes: certificate chain and key in one PEM (for nginx), and the bundle. */
export const SVID_FILE_NAME = 'svid.pem';
export const SVID_BUNDLE_FILE_NAME = 'bundle.crt';

// ---- Policies (what the controller accepts from SMI and NSM objects) ----

/** Longest regular expression (pathRegex, header value) a policy may hand to nginx. */
export const SAFE_REGEX_MAX_LENGTH = 1024;
/** Deepest nesting of groups in such a pattern (PCRE2 allows 250; nothing real needs more). */
export const SAFE_REGEX_MAX_DEPTH = 32;
/** Largest bound of a {n,m} quantifier in such a pattern (PCRE2 allows 65535). */
export const SAFE_REGEX_MAX_REPEAT = 1000;
/** Estimated compiled size of such a pattern, in bytes; PCRE2 stops at 64 KiB. */
export const SAFE_REGEX_MAX_COST = 16_384;
/** The largest TrafficSplit backend weight: a split's sum of weights stays an exact integer. */
export const TRAFFIC_SPLIT_MAX_WEIGHT = 1_000_000;
/** Longest HTTP method name a match may list. */
export const HTTP_METHOD_MAX_LENGTH = 32;
/**
 * Longest header name a match may test, and most headers one match may test: a match becomes one
 * nginx map whose source names every header's variable, and nginx refuses a token over 4 KiB.
 */
export const HTTP_HEADER_NAME_MAX_LENGTH = 64;
export const HTTP_MATCH_MAX_HEADERS = 16;

// ---- Sidecar agent ----

/**
 * Most `nginx -t` runs an agent spends finding the policy objects that make nginx refuse a
 * rendered configuration; past it, every object not yet found harmless is left out.
 */
export const AGENT_POLICY_BISECT_MAX_CHECKS = 24;
/** Longest error an agent puts in an ack, in characters. */
export const AGENT_ACK_ERROR_MAX_LENGTH = 512;
