// nats.conf's users and the subjects that name an agent's identity: one identity, one subject,
// both ways, for every ServiceAccount name the API server allows.
import {
  agentInboxPrefix,
  agentSubscriptionSubject,
  buildBusIdentities,
  busIdentityOfSpiffeId,
  renderNatsConfig,
  senderOfSubject,
} from '../../src/manifests/install/nats-config';

const LAYOUT = { clientPort: 4222, monitorPort: 8222, pidFile: '/run/nats.pid', tlsDir: '/tls' };

describe('agent subjects', () => {
  it('name the identity, and the identity is read back from the subject', () => {
    const identity = { namespace: 'shop', serviceAccount: 'cart.v2' };
    const subject = agentSubscriptionSubject(identity);
    expect(subject).toBe('nginx.nsm.agent.subscription.shop.cart_v2');
    expect(senderOfSubject(subject)).toEqual(identity);
    expect(agentInboxPrefix(identity)).toBe('_INBOX.shop.cart_v2');
  });

  it('are no identity when they are not one of its shape', () => {
    for (const subject of [
      'nginx.nsm.agent.subscription',
      'nginx.nsm.agent.subscription.shop',
      'nginx.nsm.agent.subscription.shop.web.extra',
      'nginx.nsm.agent.subscription.Shop.web',
      'nginx.nsm.agent.config.shop.web',
    ]) {
      expect(senderOfSubject(subject)).toBeUndefined();
    }
  });

  it('come from an SVID SPIFFE ID', () => {
    expect(busIdentityOfSpiffeId('spiffe://example.org/ns/shop/sa/web')).toEqual({
      namespace: 'shop',
      serviceAccount: 'web',
    });
    expect(busIdentityOfSpiffeId('spiffe://example.org/ns/shop/sa/we b')).toBeUndefined();
    expect(busIdentityOfSpiffeId('spiffe://example.org/other')).toBeUndefined();
  });
});

describe('buildBusIdentities', () => {
  it('keeps every valid account outside the excluded namespaces, sorted and once', () => {
    const identities = buildBusIdentities(
      [
        { namespace: 'shop', serviceAccount: 'web' },
        { namespace: 'kube-system', serviceAccount: 'coredns' },
        { namespace: 'nginx-mesh', serviceAccount: 'nginx-mesh-controller' },
        { namespace: 'app', serviceAccount: 'default' },
        { namespace: 'shop', serviceAccount: 'web' },
        { namespace: 'shop', serviceAccount: 'bad"name' },
      ],
      new Set(['kube-system', 'nginx-mesh']),
    );
    expect(identities).toEqual([
      { namespace: 'app', serviceAccount: 'default' },
      { namespace: 'shop', serviceAccount: 'web' },
    ]);
  });
});

describe('renderNatsConfig', () => {
  const text = renderNatsConfig(LAYOUT, {
    trustDomain: 'example.org',
    meshNamespace: 'nginx-mesh',
    identities: [{ namespace: 'shop', serviceAccount: 'web' }],
  });

  it('maps clients by certificate, with no anonymous user', () => {
    expect(text).toContain('verify_and_map: true');
    expect(text).not.toContain('no_auth_user');
    expect(text).not.toContain('password');
  });

  it('lets the controller publish configuration and read every agent subject', () => {
    expect(text).toContain(
      '{ user: "spiffe://example.org/ns/nginx-mesh/sa/nginx-mesh-controller", permissions: { publish: ["nginx.nsm.agent.config", "nginx.nsm.ctlr.ping"], subscribe: ["nginx.nsm.agent.subscription.*.*"], allow_responses: true } }',
    );
  });

  it('lets an agent identity publish on its own subject and read its own inbox only', () => {
    expect(text).toContain(
      '{ user: "spiffe://example.org/ns/shop/sa/web", permissions: { publish: ["nginx.nsm.agent.subscription.shop.web"], subscribe: ["nginx.nsm.agent.config", "nginx.nsm.ctlr.ping", "_INBOX.shop.web.>"] } }',
    );
  });

  it('serves monitoring on loopback only', () => {
    expect(text).toContain('http: "127.0.0.1:8222"');
    expect(text).not.toContain('http_port');
  });
});
