/**
 * 5. Context cost: bytes (≈ tokens = bytes/4) of tools/list for the tool sets a user gets, and of typical
 * results against the raw CRM JSON for the same data fetched directly from the emulator.
 *
 * tools/list: "model" bytes = what the model reads of it, the sum over tools of
 * JSON.stringify({name, description, input_schema}) (the major clients pass neither output schemas nor
 * annotations to the model; test/context-budget.test.ts asserts the same sum); "wire" bytes = the whole
 * tools/list result as the server sent it (output schemas, annotations and titles included). Measured for
 * the toolsets of a fresh install (what the config loader gives without CRM_TOOLSETS) and, for information,
 * CRM_TOOLSETS=all.
 *
 * "Result" = the text content the model reads (the same JSON is also sent as structuredContent; `wire_bytes`
 * counts both). "Raw" = the CRM responses for the same data: for search, the very requests the tool sent
 * (replayed directly); for lists, one page of 50; for pipelines, the pipeline/stage endpoints.
 */
import { request } from 'undici';
import { DEMO as KDEMO } from '../dist/sandbox/kommo/index.js';
import { parseToolsets } from '../dist/tools/toolsets.js';
import { bitrixEmu, bitrixProvider, CREATE_ONLY, FULL, inProcessClient, kommoEmu, kommoProvider, log, READ_ONLY, round, textOf } from './lib.mjs';

const bytes = (v) => Buffer.byteLength(typeof v === 'string' ? v : JSON.stringify(v), 'utf8');
const modelBytes = (t) => bytes({ name: t.name, description: t.description, input_schema: t.inputSchema });

/** Parameters at any depth without a description, counted as test/context-budget.test.ts counts them. */
function undescribed(schema, path, out) {
  for (const [k, v] of Object.entries(schema.properties ?? {})) {
    if (!v.description && k !== 'crm') out.push(`${path}.${k}`);
    if (v.type === 'object') undescribed(v, `${path}.${k}`, out);
    if (v.items?.type === 'object') undescribed(v.items, `${path}.${k}[]`, out);
  }
  return out;
}

async function toolsListBytes(makeProviders, toolsets) {
  const c = await inProcessClient(await makeProviders(), { toolsets });
  // The result exactly as the server sent it (the in-memory transport hands over the server's object).
  let wire;
  const deliver = c.transport.onmessage;
  c.transport.onmessage = (msg, extra) => {
    if (Array.isArray(msg?.result?.tools)) wire = msg.result;
    deliver?.(msg, extra);
  };
  await c.client.listTools();
  await c.close();
  const tools = wire.tools;
  const sum = (f) => tools.reduce((a, t) => a + f(t), 0);
  const model = sum(modelBytes);
  return {
    tools: tools.length,
    model_bytes: model,
    model_approx_tokens: Math.round(model / 4),
    wire_bytes: bytes(wire),
    wire_approx_tokens: Math.round(bytes(wire) / 4),
    undescribed_parameters: tools.flatMap((t) => undescribed(t.inputSchema, t.name, [])),
    breakdown_bytes: {
      descriptions: sum((t) => bytes(t.description ?? '')),
      input_schemas: sum((t) => bytes(t.inputSchema)),
      output_schemas: sum((t) => (t.outputSchema ? bytes(t.outputSchema) : 0)),
    },
    largest_model: tools
      .map((t) => ({ tool: t.name, model_bytes: modelBytes(t), description_bytes: bytes(t.description ?? '') }))
      .sort((x, y) => y.model_bytes - x.model_bytes)
      .slice(0, 4),
  };
}

async function kommoGet(emu, token, pathAndQuery) {
  const res = await request(`${emu.url}${pathAndQuery}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
  return res.body.text();
}

async function bitrixPost(emu, method, params) {
  const res = await request(`${emu.webhookUrl}${method}.json`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(params),
  });
  return res.body.text();
}

async function measure(c, tool, args) {
  const res = await c.call(tool, args);
  if (res.isError) throw new Error(`${tool} failed: ${textOf(res)}`);
  return { result_bytes: bytes(textOf(res)), wire_bytes: bytes(res) };
}

function row(name, m, raw, rawWhat) {
  return { result: name, ...m, approx_tokens: Math.round(m.result_bytes / 4), raw_bytes: raw, raw_what: rawWhat, ratio_to_raw: round(m.result_bytes / raw, 3) };
}

export async function contextCost() {
  log('context cost');
  const { emu: k, token } = await kommoEmu({ rateLimit: false });
  const b = await bitrixEmu({ rateLimit: false });

  // What the config loader (src/config/config.ts) gives: CRM_TOOLSETS unset, and CRM_TOOLSETS=all.
  const toolsetChoices = { default: parseToolsets(undefined).toolsets, all: parseToolsets(['all']).toolsets };
  const sets = {};
  for (const [choice, toolsets] of Object.entries(toolsetChoices)) {
    sets[choice] = { toolsets };
    for (const [name, flags] of [
      ['read-only (default)', READ_ONLY],
      ['writes on (CRM_ALLOW_WRITES=true)', CREATE_ONLY],
      ['full (writes, updates, deletes)', FULL],
    ]) {
      sets[choice][name] = {
        kommo: await toolsListBytes(async () => [await kommoProvider(k, token, flags)], toolsets),
        bitrix24: await toolsListBytes(async () => [await bitrixProvider(b, flags)], toolsets),
        both: await toolsListBytes(async () => [await kommoProvider(k, token, flags), await bitrixProvider(b, flags)], toolsets),
      };
    }
  }

  // Kommo results
  const kc = await inProcessClient([await kommoProvider(k, token)]);
  // Metadata the server caches (pipelines, users, account) is loaded first: results count only the data itself.
  await kc.call('get_account');
  const results = [];
  results.push(
    row('kommo get_pipelines', await measure(kc, 'get_pipelines'), bytes(await kommoGet(k, token, '/api/v4/leads/pipelines')), 'GET /api/v4/leads/pipelines'),
  );
  let mark = k.requests.length;
  const ks = await measure(kc, 'search_lead_by_contact', { phone: KDEMO.ivanPhone });
  const sent = k.requests.slice(mark).filter((r) => r.method === 'GET');
  let raw = 0;
  for (const r of sent) raw += bytes(await kommoGet(k, token, r.url));
  results.push(row('kommo search_lead_by_contact (phone)', ks, raw, `the ${sent.length} requests the tool sent: ${sent.map((r) => r.path).join(', ')}`));
  results.push(
    row(
      'kommo list_leads (50)',
      await measure(kc, 'list_leads', { limit: 50 }),
      bytes(await kommoGet(k, token, '/api/v4/leads?with=contacts&limit=50&page=1')),
      'GET /api/v4/leads?with=contacts&limit=50',
    ),
  );
  await kc.close();

  // Bitrix24 results
  const bc = await inProcessClient([await bitrixProvider(b)]);
  await bc.call('get_pipelines');
  let rawPipes = bytes(await bitrixPost(b, 'crm.category.list', { entityTypeId: 2 }));
  const stageEntities = ['DEAL_STAGE', ...b.state.categories.filter((c) => c.id !== 0).map((c) => `DEAL_STAGE_${c.id}`), 'STATUS'];
  for (const e of stageEntities) rawPipes += bytes(await bitrixPost(b, 'crm.status.list', { filter: { ENTITY_ID: e } }));
  results.push(
    row(
      'bitrix24 get_pipelines',
      await measure(bc, 'get_pipelines'),
      rawPipes,
      `crm.category.list + crm.status.list × ${stageEntities.length} (${stageEntities.join(', ')})`,
    ),
  );
  mark = b.requests.length;
  const bs = await measure(bc, 'search_lead_by_contact', { phone: '+7 912 345-67-89' });
  const bsent = b.requests.slice(mark);
  raw = 0;
  for (const r of bsent) {
    const res = await request(`${b.url}${r.url}`, {
      method: r.method,
      headers: { 'content-type': String(r.headers['content-type'] ?? 'application/json') },
      body: r.body || undefined,
    });
    raw += bytes(await res.body.text());
  }
  results.push(row('bitrix24 search_lead_by_contact (phone)', bs, raw, `the ${bsent.length} batch requests the tool sent`));
  results.push(
    row(
      'bitrix24 list_leads (50 deals)',
      await measure(bc, 'list_leads', { limit: 50, entity: 'deal' }),
      bytes(await bitrixPost(b, 'crm.deal.list', { order: { ID: 'DESC' }, select: ['*', 'UF_*'], start: -1 })),
      'crm.deal.list select *,UF_* (one page of 50)',
    ),
  );
  await bc.close();
  await k.close();
  await b.close();
  return { tools_list: sets, results };
}
