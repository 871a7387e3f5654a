/**
 * Issue 15: what the general code takes from the CRM modules instead of naming CRMs. The loopback origins a
 * Bitrix24 portal move may carry a credential between are passed in (never read from a set the emulators
 * fill), and the metrics label endpoints and tools only with what the app passes in.
 */
import { describe, expect, it } from 'vitest';
import { endpointLabeler } from '../../src/app.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { decidePortalMove } from '../../src/crms/bitrix24/relocation.js';

describe('decidePortalMove: loopback moves only between origins passed in', () => {
  const a = 'http://127.0.0.1:4101';
  const b = 'http://127.0.0.1:4102';
  const path = '/rest/1/abc123secret/';
  const to = (o: string) => `${o}${path}crm.deal.list.json`;
  it.each([
    ['both ends trusted', a, b, [a, b], true],
    ['only the start trusted', a, b, [a], false],
    ['only the target trusted', a, b, [b], false],
    ['nothing trusted', a, b, [], false],
    [
      'trusted non-loopback origins earn nothing',
      'https://crm.acme.local',
      'https://crm2.acme.local',
      ['https://crm.acme.local', 'https://crm2.acme.local'],
      false,
    ],
  ] as const)('%s: follow=%s', (_name, from, target, trusted, follow) => {
    const d = decidePortalMove(from, to(target), path, trusted);
    expect(d.follow).toBe(follow);
    if (!d.follow) expect(d.reason).not.toContain('abc123secret');
  });
});

describe('metrics labels come from what the app passes in', () => {
  const event = (provider: string, path: string) => ({ provider, method: 'GET' as const, path, status: 200, ms: 1, attempt: 0, limiterWaitMs: 0 });
  const series = async (m: Metrics, name: string) => (await m.render()).split('\n').filter((l) => l.startsWith(`${name}{`));

  it('an endpoint is labelled by the module of its kind, `other` without one', async () => {
    const m = new Metrics({
      processMetrics: false,
      endpointLabel: endpointLabeler([{ kind: 'acme', metricsLabel: (_method, p) => (p === '/v1/things' ? 'things' : 'other') }, { kind: 'plain' }]),
    });
    m.onHttpEvent(event('acme', '/v1/things'));
    m.onHttpEvent(event('acme', '/v1/secret-9f8e7d'));
    m.onHttpEvent(event('plain', '/v1/things'));
    m.onHttpEvent(event('unregistered', '/v1/things'));
    expect(await series(m, 'crm_mcp_crm_requests_total')).toEqual([
      'crm_mcp_crm_requests_total{provider="acme",endpoint="things",method="GET",status="200"} 1',
      'crm_mcp_crm_requests_total{provider="acme",endpoint="other",method="GET",status="200"} 1',
      'crm_mcp_crm_requests_total{provider="plain",endpoint="other",method="GET",status="200"} 1',
      'crm_mcp_crm_requests_total{provider="unregistered",endpoint="other",method="GET",status="200"} 1',
    ]);
  });

  it('without a labeller every endpoint is `other`; a tool label is one of the names passed in', async () => {
    const m = new Metrics({ processMetrics: false, toolNames: ['get_thing'] });
    m.onHttpEvent(event('acme', '/v1/things'));
    m.mcpRequest({ method: 'tools/call', name: 'get_thing', era: 'modern', status: 200 });
    m.mcpRequest({ method: 'tools/call', name: 'made_up', era: 'modern', status: 200 });
    expect(await series(m, 'crm_mcp_crm_requests_total')).toEqual(['crm_mcp_crm_requests_total{provider="acme",endpoint="other",method="GET",status="200"} 1']);
    expect(await series(m, 'crm_mcp_mcp_requests_total')).toEqual([
      'crm_mcp_mcp_requests_total{method="tools/call",tool="get_thing",era="modern",status="200"} 1',
      'crm_mcp_mcp_requests_total{method="tools/call",tool="other",era="modern",status="200"} 1',
    ]);
  });
});
