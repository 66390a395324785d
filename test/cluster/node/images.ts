// The node's image table: which host program each image runs. This project's images run the
// built executable; the sample application runs the echo server on the pinned Node; nats runs
// Debian's nats-server; shell images run the host's shell, so test Jobs can use `sh -c`.
import type { ImageRule } from './pod-spec';

export interface ImagePaths {
  /** dist/nginx-meshctl. */
  readonly meshctl: string;
  /** The pinned Node binary. */
  readonly node: string;
  /** The bundled echo server. */
  readonly echoServer: string;
  /** Debian's nats-server. */
  readonly natsServer: string;
  /** The modules the sidecar's nginx loads (Debian's stream module, then ngx_mesh), comma-separated. */
  readonly nginxModules: string;
}

export function imageTable(paths: ImagePaths): ImageRule[] {
  const meshctl = {
    entrypoint: ['/usr/bin/nginx-meshctl'],
    cmd: [],
    paths: { '/usr/bin/nginx-meshctl': paths.meshctl, 'nginx-meshctl': paths.meshctl },
  };
  return [
    { pattern: /(^|\/)nginx-mesh-(controller|init)(:|@|$)/, program: meshctl },
    {
      // The sidecar image carries nginx and our module; here they come from the host and the build.
      pattern: /(^|\/)nginx-mesh-sidecar(:|@|$)/,
      program: { ...meshctl, env: { NGINX_MESH_MODULES: paths.nginxModules } },
    },
    {
      pattern: /(^|\/)echo-server(:|@|$)/,
      program: { entrypoint: [paths.node, paths.echoServer], cmd: [], paths: {} },
    },
    {
      // The official image's ENTRYPOINT is /nats-server; its default configuration listens on 4222.
      pattern: /(^|\/)nats(:|@|$)/,
      program: {
        entrypoint: ['/nats-server'],
        cmd: [],
        paths: { '/nats-server': paths.natsServer },
      },
    },
    {
      pattern: /(^|\/)(busybox|debian|alpine)(:|@|$)/,
      program: { entrypoint: [], cmd: ['/bin/sh'], paths: { sh: '/bin/sh' } },
    },
  ];
}
