// Where the cert-reloader finds the registrar: an explicit URL wins; otherwise the Service's
// address Kubernetes puts in the environment (the test cluster has no DNS), else its DNS name.
import { natsUrlOf, registrarUrlOf } from '../../src/runtime/svid/identity';

describe('registrarUrlOf', () => {
  it('takes the flag when it is set', () => {
    expect(registrarUrlOf('https://10.0.0.9:9443', {}, 'mesh')).toBe('https://10.0.0.9:9443');
  });

  it("uses the registrar Service's address from the environment", () => {
    const env = {
      NGINX_MESH_REGISTRAR_SERVICE_HOST: '198.18.0.12',
      NGINX_MESH_REGISTRAR_SERVICE_PORT: '8443',
    };
    expect(registrarUrlOf('', env, 'mesh')).toBe('https://198.18.0.12:8443');
  });

  it('brackets an IPv6 Service address', () => {
    expect(registrarUrlOf('', { NGINX_MESH_REGISTRAR_SERVICE_HOST: 'fd00::12' }, 'mesh')).toBe(
      'https://[fd00::12]:8443',
    );
  });

  it("falls back to the Service's DNS name in the mesh namespace", () => {
    expect(registrarUrlOf('', {}, 'mesh')).toBe('https://nginx-mesh-registrar.mesh.svc:8443');
  });
});

describe('natsUrlOf', () => {
  it('uses the NATS Service address from the environment, as tls://', () => {
    const env = { NATS_SERVER_SERVICE_HOST: '198.18.0.20', NATS_SERVER_SERVICE_PORT: '4222' };
    expect(natsUrlOf('', env, 'mesh')).toBe('tls://198.18.0.20:4222');
  });

  it('falls back to the DNS name, and a flag wins over both', () => {
    expect(natsUrlOf('', {}, 'mesh')).toBe('tls://nats-server.mesh.svc:4222');
    expect(natsUrlOf('tls://127.0.0.1:4333', { NATS_SERVER_SERVICE_HOST: 'x' }, 'mesh')).toBe(
      'tls://127.0.0.1:4333',
    );
  });
});
