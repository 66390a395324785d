import {
  buildTransparentModel,
  parseHealthRedirects,
  printNginxConfig,
} from '../../src/render/agent-nginx';
import { expectGolden } from '../support/golden';

const base = {
  runDir: '/etc/nginx-mesh',
  modules: [
    '/usr/lib/nginx/modules/ngx_stream_module.so',
    '/usr/lib/nginx/modules/ngx_mesh_module.so',
  ],
  errorLogLevel: 'warn',
  outboundPort: 8900,
  inboundPort: 8901,
  healthHttpPort: 8895,
  healthHttpsPort: 8896,
};

describe('the transparent proxy configuration', () => {
  it('passes both redirect ports through and forwards rewritten probes (golden)', () => {
    const text = printNginxConfig(
      buildTransparentModel({
        ...base,
        ipv6: true,
        healthRedirects: parseHealthRedirects(
          JSON.stringify({
            '/health-redirects/app/readiness': { port: 8080, path: '/ready', scheme: 'HTTP' },
            '/health-redirects/app/liveness': { port: 8443, path: '/live', scheme: 'HTTPS' },
          }),
        ),
      }),
    );
    expectGolden('agent-nginx/transparent.conf', text);
  });

  it('serves no probe ports when no probe was rewritten, and IPv4 only when asked', () => {
    const text = printNginxConfig(
      buildTransparentModel({ ...base, ipv6: false, healthRedirects: {} }),
    );
    expect(text).not.toContain('8895');
    expect(text).not.toContain('[::]');
    expect(text).toContain('        proxy_pass $mesh_original_dst;\n');
  });

  it('rejects a malformed redirect table naming the entry', () => {
    expect(() => parseHealthRedirects('{"/x": {"port": 70000}}')).toThrow(
      '--health-redirects: invalid entry for "/x"',
    );
    expect(() => parseHealthRedirects('[]')).toThrow('--health-redirects: expected a JSON object');
  });
});
