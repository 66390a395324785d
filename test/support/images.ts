// The images tests run on the test node, as scripts/build-images.sh tags them: built from the
// Dockerfiles under images/ and imported into the node's containerd, never pulled.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NATS_IMAGE } from '../../src/manifests/constants';

const packageJson = JSON.parse(
  readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'),
) as { version: string };

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
