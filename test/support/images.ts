// The images tests run on the test node, as scripts/build-images.sh tags them: built from the
// Dockerfiles under images/ and imported into the node's containerd, never pulled.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { NATS_IMAGE } from '../../src/manifests/constants';

/** The project's package.json: found upwards from here, as bundled scripts run from elsewhere. */
function projectPackage(): { name: string; version: string } {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const path = join(dir, 'package.json');
    if (existsSync(path)) {
      const found = JSON.parse(readFileSync(path, 'utf8')) as { name: string; version: string };
      if (found.name === 'nginx-meshctl') return found;
    }
    if (dirname(dir) === dir)
      throw new Error(`no package.json of nginx-meshctl above ${__dirname}`);
  }
}

const packageJson = projectPackage();

/** The registry and tag every built image carries (deploy's defaults). */
export const IMAGE_REGISTRY = 'localhost';
export const IMAGE_TAG = packageJson.version;

/** The echo server (test/cluster/apps/echo-server.ts) on the pinned Node. */
export const ECHO_SERVER_IMAGE = `${IMAGE_REGISTRY}/nginx-mesh-test-echo-server:${IMAGE_TAG}`;
/** bash, curl, iproute2 and the pinned Node: a client for `kubectl exec`, and Jobs' shell. */
export const CLIENT_IMAGE = `${IMAGE_REGISTRY}/nginx-mesh-test-client:${IMAGE_TAG}`;
/** Debian's nats-server 2.9, under the name deploy --disable-public-images gives NATS. */
export const NATS_IMAGE_REF = `${IMAGE_REGISTRY}/${NATS_IMAGE}`;

/** The flags that make deploy use the images built here, NATS included. */
export const LOCAL_IMAGE_FLAGS: readonly string[] = [
  '--registry-server',
  IMAGE_REGISTRY,
  '--image-tag',
  IMAGE_TAG,
  '--disable-public-images',
];
/** The control-plane image (controller, registrar, metrics and cert-reloader roles). */
export const CONTROLLER_IMAGE_REF = `${IMAGE_REGISTRY}/nginx-mesh-controller:${IMAGE_TAG}`;
/** The data plane's images. */
export const SIDECAR_IMAGE_REF = `${IMAGE_REGISTRY}/nginx-mesh-sidecar:${IMAGE_TAG}`;
export const INIT_IMAGE_REF = `${IMAGE_REGISTRY}/nginx-mesh-init:${IMAGE_TAG}`;
