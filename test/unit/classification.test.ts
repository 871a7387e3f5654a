/**
 * The raw tools' effect tables, written out by hand (not derived from the rules they check): what each
 * Kommo request and each Bitrix24 method does, in the words of the policy.
 */
import { describe, expect, it } from 'vitest';
import { classifyKommo, normaliseKommoPath } from '../../src/crms/kommo/effects.js';
import { checkCall, classifyBatch, classifyBatchParams, classifyCall, classifyMethod, normalizeMethod } from '../../src/crms/bitrix24/methods.js';
import { makeBitrixAdapter } from '../../src/crms/bitrix24/adapter.js';

describe('Kommo: every path the raw tool accepts, by method', () => {
  it.each([
    ['GET', '/api/v4/leads', 'read'],
    ['GET', '/api/v4/webhooks', 'read'],
    ['GET', '/api/v4/leads/12/notes', 'read'],
    ['POST', '/api/v4/leads', 'create'],
    ['POST', '/api/v4/contacts', 'create'],
    ['POST', '/api/v4/companies', 'create'],
    ['POST', '/api/v4/customers', 'create'],
    ['POST', '/api/v4/leads/complex', 'create'],
    ['POST', '/api/v4/leads/notes', 'create'],
    ['POST', '/api/v4/leads/42/notes', 'create'],
    ['POST', '/api/v4/contacts/7/notes', 'create'],
    ['POST', '/api/v4/tasks', 'create'],
    ['POST', '/api/v4/calls', 'create'],
    ['POST', '/api/v4/leads/unsorted/forms', 'create'],
    ['POST', '/api/v4/leads/unsorted/sip', 'create'],
    ['PATCH', '/api/v4/leads', 'update'],
    ['PATCH', '/api/v4/leads/42', 'update'],
    ['PATCH', '/api/v4/contacts/7', 'update'],
    ['PATCH', '/api/v4/tasks/5', 'update'],
    ['PATCH', '/api/v4/leads/42/notes/3', 'update'],
    ['POST', '/api/v4/leads/42/link', 'update'],
    ['POST', '/api/v4/leads/link', 'update'],
    ['POST', '/api/v4/contacts/7/unlink', 'update'],
    ['POST', '/api/v4/leads/unsorted/a1b2c3/accept', 'update'],
    ['POST', '/api/v4/leads/unsorted/a1b2c3/link', 'update'],
    ['DELETE', '/api/v4/leads/unsorted/a1b2c3/decline', 'delete'],
    ['POST', '/api/v4/contacts/chats', 'update'],
    ['POST', '/api/v4/talks/9/close', 'update'],
    ['POST', '/api/v4/webhooks', 'admin'],
    ['DELETE', '/api/v4/webhooks', 'admin'],
    ['POST', '/api/v4/widgets/some_widget', 'admin'],
    ['POST', '/api/v4/leads/pipelines', 'admin'],
    ['PATCH', '/api/v4/leads/pipelines/3', 'admin'],
    ['DELETE', '/api/v4/leads/pipelines/3/statuses/142', 'admin'],
    ['POST', '/api/v4/leads/custom_fields', 'admin'],
    ['DELETE', '/api/v4/contacts/custom_fields/5', 'admin'],
    ['POST', '/api/v4/leads/tags', 'admin'],
    ['POST', '/api/v4/users', 'admin'],
    ['POST', '/api/v4/roles', 'admin'],
    ['POST', '/api/v4/sources', 'admin'],
    ['POST', '/api/v4/catalogs', 'admin'],
    ['POST', '/api/v4/catalogs/3/elements', 'admin'],
    ['POST', '/api/v4/salesbot/run', 'admin'],
    ['POST', '/api/v4/chats/templates', 'admin'],
    ['POST', '/api/v4/short_links', 'admin'],
    ['POST', '/api/v4/leads/loss_reasons', 'admin'],
    ['POST', '/api/v4/something_new', 'admin'],
    ['DELETE', '/api/v4/leads/42', 'admin'],
    ['PATCH', '/api/v4/webhooks', 'admin'],
  ] as const)('%s %s → %s', (method, path, effect) => {
    expect(classifyKommo(method, path)).toBe(effect);
  });

  it.each([
    ['/api/v4/leads/42/LINK', 'update'],
    ['/api/v4/leads/42/lin%6b', 'update'],
    ['/api/v4/leads/42/lin%256b', 'update'],
    ['/api/v4/leads/42/link/', 'update'],
    ['/API/V4/WEBHOOKS', 'admin'],
    ['/api/v4/web%68ooks', 'admin'],
    ['/api/v4/webhooks/', 'admin'],
  ] as const)('POST %s is normalised before it is classified → %s', (path, effect) => {
    expect(classifyKommo('POST', path)).toBe(effect);
  });

  it.each([
    '/api/v4/leads/42/link;x',
    '/api/v4/leads/42/link.json',
    '/api/v4/leads/../webhooks',
    '/api/v4/le ads',
    '/api/v4/lеads',
    '/api/v4//leads',
    '/api/v4/leads/%zz',
  ])('%s is not a plain path: refused, and the strongest effect at the core', (path) => {
    expect(normaliseKommoPath(path).ok).toBe(false);
    expect(classifyKommo('POST', path)).toBe('admin');
  });

  it('a create whose body names an existing record by id is an update', () => {
    expect(classifyKommo('POST', '/api/v4/leads', [{ name: 'x' }])).toBe('create');
    expect(classifyKommo('POST', '/api/v4/leads', [{ id: 5, name: 'x' }])).toBe('update');
    expect(classifyKommo('POST', '/api/v4/contacts', [{ name: 'a' }, { ID: 9 }])).toBe('update');
    // §5.5: duplicate control may merge a complex lead into the embedded contact's open lead: an update.
    expect(classifyKommo('POST', '/api/v4/leads/complex', [{ name: 'x', _embedded: { contacts: [{ id: 3 }] } }])).toBe('update');
  });
});

describe('Kommo: what the query and the body do (issue 14: findings 5, 6, 8, 9, 11)', () => {
  const q = (s: string) => new URLSearchParams(s);

  it.each([
    ['POST', '/api/v4/customers/7/transactions', '', 'create'],
    ['POST', '/api/v4/customers/7/transactions', 'accrue_bonus=true', 'update'],
    ['POST', '/api/v4/customers/7/transactions', 'accrue_bonus=false', 'update'],
    ['POST', '/api/v4/customers/7/transactions', 'accrue.bonus=1', 'update'],
    ['POST', '/api/v4/customers/7/transactions', 'accrue_bonus[]=1', 'update'],
    ['POST', '/api/v4/customers/7/transactions', 'foo=1', 'admin'],
    ['POST', '/api/v4/customers/7/transactions', 'ACCRUE_BONUS=1', 'admin'],
    ['POST', '/api/v4/leads', 'with=contacts', 'admin'],
    ['POST', '/api/v4/leads/42/notes', 'x=1', 'admin'],
    ['PATCH', '/api/v4/leads/42', 'debug=1', 'admin'],
    ['GET', '/api/v4/leads', 'with=contacts&filter[id][]=1', 'read'],
  ] as const)('%s %s?%s → %s', (method, path, query, effect) => {
    expect(classifyKommo(method, path, [{ price: 10 }], q(query))).toBe(effect);
  });

  it.each(['_method=DELETE', '_METHOD=patch', '.method=DELETE', ' _method=DELETE', '_method[]=DELETE', '_method%00x=DELETE', 'a=1&_method=PATCH'])(
    'a method override in the query (%s) is refused on every method, not classified',
    (query) => {
      for (const method of ['GET', 'POST', 'PATCH', 'DELETE'] as const) {
        expect(() => classifyKommo(method, '/api/v4/customers/7/transactions/9', undefined, q(query))).toThrow(/another HTTP method/);
      }
    },
  );

  it.each([
    ['{"0": {...}}', { '0': { id: 1000001, name: 'x' } }],
    ['{"1": {...}, "0": {...}}', { '1': { id: 1000001 }, '0': { name: 'new' } }],
    ['mixed keys', { name: 'x', '5': { id: 1000001 } }],
  ])('a create body %s that names a record by id is an update (PHP decodes it as a list)', (_what, body) => {
    expect(classifyKommo('POST', '/api/v4/leads', body)).toBe('update');
  });

  it('a numeric-keyed body without ids stays a create', () => {
    expect(classifyKommo('POST', '/api/v4/leads', { '0': { name: 'x' }, '1': { name: 'y' } })).toBe('create');
  });

  it.each([
    ['tags null', { _embedded: { tags: null } }, 'delete'],
    ['tags []', { _embedded: { tags: [] } }, 'delete'],
    ['tags {}', { _embedded: { tags: {} } }, 'delete'],
    ['tags replaced by id', { _embedded: { tags: [{ id: 40001 }] } }, 'delete'],
    ['tags_to_delete', { tags_to_delete: [{ name: 'vip' }] }, 'delete'],
    ['tags_to_delete by id', { tags_to_delete: [{ id: 40001 }] }, 'delete'],
    ['a field cleared with null', { custom_fields_values: [{ field_id: 910001, values: null }] }, 'delete'],
    ['a field cleared with []', { custom_fields_values: [{ field_id: 910001, values: [] }] }, 'delete'],
    ['a field set to ""', { custom_fields_values: [{ field_id: 910001, values: [{ value: '' }] }] }, 'delete'],
    ['every field null', { custom_fields_values: null }, 'delete'],
    ['links replaced', { _embedded: { companies: [{ id: 3 }] } }, 'delete'],
    ['a field set', { custom_fields_values: [{ field_id: 910001, values: [{ value: 'web' }] }] }, 'update'],
    ['an enum chosen', { custom_fields_values: [{ field_id: 910005, values: [{ enum_id: 7 }] }] }, 'update'],
    ['a rename', { name: 'x', price: 5 }, 'update'],
    ['an existing tag added by id', { tags_to_add: [{ id: 40001 }] }, 'update'],
    ['a tag added by name', { tags_to_add: [{ name: 'maybe-new' }] }, 'admin'],
    ['tags replaced by name', { _embedded: { tags: [{ name: 'vip' }] } }, 'admin'],
  ] as const)('PATCH a record: %s → %s', (_what, body, effect) => {
    expect(classifyKommo('PATCH', '/api/v4/leads/42', body)).toBe(effect);
    expect(classifyKommo('PATCH', '/api/v4/contacts', [{ id: 7, ...body }])).toBe(effect);
    expect(classifyKommo('PATCH', '/api/v4/companies', { '0': { id: 7, ...body } })).toBe(effect);
  });

  it.each([
    ['tags by id', [{ name: 'x', _embedded: { tags: [{ id: 40001 }] } }], 'create'],
    ['a tag by name', [{ name: 'x', _embedded: { tags: [{ name: 'vip' }] } }], 'admin'],
    ['a tag by id and name', [{ name: 'x', _embedded: { tags: [{ id: 40001, name: 'vip' }] } }], 'admin'],
    ['tags_to_add by name', [{ name: 'x', tags_to_add: [{ name: 'new' }] }], 'admin'],
    ['a tag name as a string', [{ name: 'x', _embedded: { tags: 'vip' } }], 'admin'],
  ] as const)('POST /leads with %s → %s (§9: an unknown name extends the tag list)', (_what, body, effect) => {
    expect(classifyKommo('POST', '/api/v4/leads', body)).toBe(effect);
  });

  it('a tag list nested in an incoming lead counts too', () => {
    const body = [{ source_uid: 'a', _embedded: { leads: [{ name: 'x', _embedded: { tags: [{ name: 'new' }] } }] } }];
    expect(classifyKommo('POST', '/api/v4/leads/unsorted/forms', body)).toBe('admin');
  });

  it.each([
    ['no contact or company', [{ name: 'x' }], 'create'],
    ['an existing contact by id', [{ name: 'x', _embedded: { contacts: [{ id: 2000001 }] } }], 'update'],
    ['a new contact with a phone', [{ name: 'x', _embedded: { contacts: [{ first_name: 'A', custom_fields_values: [] }] } }], 'update'],
    ['an existing company by id', [{ name: 'x', _embedded: { companies: [{ id: 3000001 }] } }], 'update'],
    ['PHP list shape', { '0': { name: 'x', _embedded: { contacts: { '0': { id: 2000001 } } } } }, 'update'],
  ] as const)('POST /leads/complex with %s → %s (§5.5 duplicate control may merge)', (_what, body, effect) => {
    expect(classifyKommo('POST', '/api/v4/leads/complex', body)).toBe(effect);
  });

  it('POST /leads linking an existing contact stays a create (plain creates never merge)', () => {
    expect(classifyKommo('POST', '/api/v4/leads', [{ name: 'x', _embedded: { contacts: [{ id: 2000001, is_main: true }], companies: [{ id: 3 }] } }])).toBe(
      'create',
    );
  });

  it('a body nested past what Kommo takes is the strongest effect', () => {
    let body: unknown = { name: 'x' };
    for (let i = 0; i < 100; i++) body = { a: body };
    expect(classifyKommo('POST', '/api/v4/leads', [body])).toBe('admin');
  });
});

describe('Bitrix24: the method table', () => {
  it.each([
    ['crm.deal.list', 'read'],
    ['crm.lead.get', 'read'],
    ['crm.duplicate.findbycomm', 'read'],
    ['user.current', 'read'],
    ['user.get', 'read'],
    ['event.get', 'read'],
    ['event.offline.list', 'read'],
    ['crm.deal.add', 'create'],
    ['crm.lead.add', 'create'],
    ['crm.contact.add', 'create'],
    ['crm.company.add', 'create'],
    ['crm.item.add', 'create'],
    ['crm.activity.add', 'create'],
    ['crm.activity.todo.add', 'create'],
    ['crm.timeline.comment.add', 'create'],
    ['tasks.task.add', 'create'],
    ['telephony.externalcall.register', 'create'],
    // Creates a deal from a recurring template and advances the template: it changes an existing record.
    ['crm.deal.recurring.expose', 'update'],
    ['crm.deal.update', 'update'],
    ['crm.item.update', 'update'],
    ['tasks.task.complete', 'update'],
    ['crm.deal.contact.add', 'update'],
    ['crm.lead.contact.add', 'update'],
    ['crm.contact.company.add', 'update'],
    ['crm.deal.contact.delete', 'update'],
    ['crm.item.productrow.add', 'update'],
    ['crm.activity.binding.add', 'update'],
    ['crm.timeline.bindings.bind', 'update'],
    // Grants the person the chat's history, not only a seat: admin (issue 14, finding 11).
    ['im.chat.user.add', 'admin'],
    ['crm.lead.delete', 'delete'],
    ['crm.item.delete', 'delete'],
    ['crm.deal.productrows.set', 'delete'],
    ['crm.deal.contact.items.set', 'delete'],
    ['crm.entity.mergebatch', 'delete'],
    ['event.bind', 'admin'],
    ['event.unbind', 'admin'],
    ['event.offline.get', 'admin'],
    ['event.test', 'admin'],
    ['placement.bind', 'admin'],
    ['user.add', 'admin'],
    ['user.update', 'admin'],
    ['department.add', 'admin'],
    ['im.message.add', 'admin'],
    ['im.notify.system.add', 'admin'],
    ['im.notify.read.list', 'admin'],
    ['imbot.message.add', 'admin'],
    ['crm.deal.userfield.add', 'admin'],
    ['crm.category.add', 'admin'],
    ['crm.status.add', 'admin'],
    ['bizproc.workflow.start', 'admin'],
    ['messageservice.message.status.update', 'admin'],
    ['crm.product.add', 'admin'],
    ['crm.totally.unknown', 'admin'],
    ['im.notify', 'admin'],
    ['foo.bar', 'admin'],
  ] as const)('%s → %s', (m, effect) => {
    expect(classifyMethod(m)).toBe(effect);
  });

  it('normalises case, spaces at the ends, .json/.xml, trailing dots and slashes, full-width letters', () => {
    expect(normalizeMethod(' CRM.Lead.Delete.json/ ')).toBe('crm.lead.delete');
    expect(normalizeMethod('crm.lead.list.xml')).toBe('crm.lead.list');
    expect(normalizeMethod('crm.deal.delete.')).toBe('crm.deal.delete');
    expect(normalizeMethod('crm.deal.delete..')).toBe('crm.deal.delete');
    expect(normalizeMethod('ｃｒｍ.deal.delete')).toBe('crm.deal.delete');
  });

  it.each([
    '../crm.lead.list',
    'crm..lead',
    'crm.lead.list?x=1',
    'https://evil.test/crm.lead.list',
    'crm/lead/list',
    '',
    'crm.deal .delete',
    'crm.deаl.delete',
    'crm.deal.%64elete',
  ])('%j is not a method name', (bad) => {
    expect(normalizeMethod(bad)).toBeUndefined();
  });

  it('a create naming an existing record by id is an update', () => {
    expect(classifyCall('crm.deal.add', { fields: { TITLE: 'x' } })).toBe('create');
    expect(classifyCall('crm.deal.add', { id: 5, fields: { TITLE: 'x' } })).toBe('update');
    expect(classifyCall('crm.deal.add', { fields: { ID: 5, TITLE: 'x' } })).toBe('update');
    expect(classifyBatch({ a: 'crm.deal.add?fields[TITLE]=x' }).effect).toBe('create');
    expect(classifyBatch({ a: 'crm.deal.add?fields[ID]=5&fields[TITLE]=x' }).effect).toBe('update');
    expect(classifyBatch({ a: 'crm.deal.add?id=5' }).effect).toBe('update');
    expect(classifyBatch({ a: 'crm.deal.add?fields%5BID%5D=5' }).effect).toBe('update');
  });

  it('a batch is as strong as its strongest command; variants are classified after normalising', () => {
    expect(classifyBatch({ a: 'crm.deal.list', b: 'crm.lead.get?id=1' }).effect).toBe('read');
    expect(classifyBatch(['crm.deal.list', 'crm.lead.delete?id=1']).effect).toBe('delete');
    expect(classifyBatch(['crm.deal.list', 'CRM.DEAL.CONTACT.ADD?id=1']).effect).toBe('update');
    expect(classifyBatch(['crm.deal.list', 'im.message.add.?DIALOG_ID=1']).effect).toBe('admin');
    expect(classifyBatch(['crm.deal.add', 'crm.deal.delete ?id=1']).effect).toBe('delete');
    expect(classifyBatch({ a: 'batch?cmd[x]=crm.lead.delete' }).problem).toMatch(/nested/);
    expect(classifyBatch({ a: 'crm.deаl.delete?id=1' }).problem).toMatch(/not a method name/);
    expect(classifyBatch({}).problem).toBeTruthy();
  });
});

// ---------------------------------------------------------------- issue 14 (Bitrix24)

describe('Bitrix24: a read word makes a read only after a vetted namespace (finding 10)', () => {
  it.each([
    ['crm.lead.update.get', 'admin'],
    ['crm.lead.update.list', 'admin'],
    ['crm.deal.delete.fields', 'admin'],
    ['crm.lead.add.search', 'admin'],
    ['crm.contact.update.getlist', 'admin'],
    ['crm.nope.get', 'admin'],
    ['foo.list', 'admin'],
    ['im.chat.get', 'admin'],
    ['crm.deal.list', 'read'],
    ['crm.lead.get', 'read'],
    ['crm.item.list', 'read'],
    ['crm.company.contact.items.get', 'read'],
    ['crm.deal.contact.items.get', 'read'],
    ['crm.deal.userfield.list', 'read'],
    ['crm.status.list', 'read'],
    ['crm.category.list', 'read'],
    ['crm.dealcategory.stage.list', 'read'],
    ['crm.timeline.comment.list', 'read'],
    ['crm.activity.list', 'read'],
    ['crm.stagehistory.list', 'read'],
    ['crm.item.productrow.list', 'read'],
    ['tasks.task.list', 'read'],
    ['department.get', 'read'],
    ['user.search', 'read'],
  ] as const)('%s → %s', (m, effect) => {
    expect(classifyMethod(m)).toBe(effect);
  });
});

describe('Bitrix24: parameter names are read the way the portal folds them (finding 1)', () => {
  it.each([
    [{ fields: { TITLE: 'a' }, FIELDS: { TITLE: 'b' } }],
    [{ id: 1, ID: 2, fields: { TITLE: 'a' } }],
    [{ fields: { TITLE: 'a' }, arFields: { TITLE: 'b' } }],
    [{ fields: { TITLE: 'a', title: 'b' } }],
    [{ fields: { CONTACT_IDS: [1], contactIds: [2] } }],
    [{ fields: { PHONE: [{ ID: '1', id: '2', VALUE: 'x' }] } }],
  ])('%j: two names fold to one, so the call is refused (and admin at the core)', (params) => {
    expect(checkCall('crm.deal.add', params).problem).toMatch(/reads as one name/);
    expect(classifyCall('crm.deal.add', params)).toBe('admin');
  });

  it('a batch reads cmd and halt in any case; two of either are refused', () => {
    const evil = {
      cmd: { a: 'crm.deal.list?select[]=ID' },
      CMD: { a: 'crm.deal.delete?id=1', b: 'event.bind?event=ONCRMLEADADD&handler=https://evil.example/h' },
    };
    expect(classifyBatchParams(evil).problem).toMatch(/"cmd" and "CMD"/);
    expect(classifyBatchParams({ cmd: { a: 'crm.deal.list' }, halt: 0, HALT: 1 }).problem).toMatch(/halt/);
    expect(classifyBatchParams({ CMD: { a: 'crm.deal.delete?id=1' } }).effect).toBe('delete');
    expect(classifyBatchParams({ Cmd: ['crm.deal.list'], Halt: 1 })).toMatchObject({ effect: 'read', halt: 1 });
    const core = makeBitrixAdapter('/rest/1/secret/');
    expect(core.classify('POST', '/rest/1/secret/batch.json', evil, new URLSearchParams())).toBe('admin');
    expect(core.classify('POST', '/rest/1/secret/batch.json', { CMD: { a: 'crm.deal.delete?id=1' } }, new URLSearchParams())).toBe('delete');
    expect(core.classify('POST', '/rest/1/secret/crm.deal.list.json', {}, new URLSearchParams('FIELDS[ID]=1'))).toBe('admin');
  });

  it.each([
    ['crm.deal.add?fields[TITLE]=a&FIELDS[TITLE]=b', /reads as one name/],
    ['crm.deal.update?id=1&ID=2&fields[TITLE]=a', /reads as one name/],
    ['crm.activity.add?fields[TYPE_ID]=2&fields[TYPE_ID]=4', /given twice/],
    ['crm.deal.add?fields[TITLE]=a&fields[TITLE][x]=b', /both as a value and as a list/],
    ['crm.deal.add?fields.ID=5', /not plain PHP bracket notation/],
    ['crm.deal.add?fields[ID=5', /not plain PHP bracket notation/],
    ['crm.deal.add?fields[TITLE]x=5', /not plain PHP bracket notation/],
    ['crm.deal.add?fields[TITLE]=a#&fields[ID]=5', /"#"/],
    ['crm.deal.update?$result[a]=5', /earlier result/],
    ['crm.deal.update?id=1&fields[$next]=Y', /earlier result/],
    ['crm.deal.update?id=1&fields[$result[a]]=Y', /not plain PHP bracket notation/],
  ])('batch command %s is refused', (command, why) => {
    expect(classifyBatch({ a: command }).problem).toMatch(why);
  });

  it('a batch query is decoded like PHP: `+` is a space, leading spaces of a name are dropped, escapes decoded', () => {
    expect(classifyBatch({ a: 'crm.deal.add?+id=5' }).effect).toBe('update');
    expect(classifyBatch({ a: 'crm.deal.add?%69d=5' }).effect).toBe('update');
    expect(classifyBatch({ a: 'crm.deal.add?fields%5Bid%5D=5' }).effect).toBe('update');
    expect(classifyBatch({ a: 'crm.deal.add?fields[TITLE]=50%25+off' }).effect).toBe('create');
  });
});

const MAIL = { OWNER_TYPE_ID: 3, OWNER_ID: 1, SUBJECT: 's', RESPONSIBLE_ID: 1, COMMUNICATIONS: [{ VALUE: 'x@evil.example' }] };

describe('Bitrix24: activities that deliver a message are admin (finding 2)', () => {
  it.each([
    [{ ...MAIL, TYPE_ID: 4, DIRECTION: 2, COMPLETED: 'Y' }, 'admin'],
    [{ ...MAIL, TYPE_ID: 4, DIRECTION: 2, COMPLETED: 'N' }, 'admin'],
    [{ ...MAIL, TYPE_ID: '4', DIRECTION: '2' }, 'admin'],
    [{ ...MAIL, TYPE_ID: 4 }, 'admin'],
    [{ ...MAIL, type_id: 4, direction: 2 }, 'admin'],
    [{ ...MAIL, TYPE_ID: 4, DIRECTION: 1 }, 'create'],
    [{ ...MAIL, TYPE_ID: 2, DIRECTION: 2 }, 'create'],
    [{ ...MAIL, TYPE_ID: 1 }, 'create'],
    [{ ...MAIL, TYPE_ID: 2, PROVIDER_ID: 'VOXIMPLANT_CALL', PROVIDER_TYPE_ID: 'CALL' }, 'create'],
    [{ ...MAIL, TYPE_ID: 2, PROVIDER_ID: 'CRM_SMS' }, 'admin'],
    [{ ...MAIL, TYPE_ID: 2, PROVIDER_TYPE_ID: 'SMS' }, 'admin'],
    [{ ...MAIL, TYPE_ID: 6, PROVIDER_ID: 'REST_APP' }, 'admin'],
    [{ ...MAIL, TYPE_ID: 1, PROVIDER_ID: 'IMOPENLINES_SESSION' }, 'admin'],
    [{ ...MAIL, TYPE_ID: 2, PROVIDER_PARAMS: { x: 1 } }, 'admin'],
    [{ ...MAIL, TYPE_ID: 3 }, 'admin'],
    [{ ...MAIL, TYPE_ID: '2x' }, 'admin'],
    [{ ...MAIL }, 'admin'],
  ] as const)('crm.activity.add %j → %s', (fields, effect) => {
    expect(classifyCall('crm.activity.add', { fields })).toBe(effect);
  });

  it('crm.activity.todo.add is a create unless it names a sending provider; the same rules hold inside a batch', () => {
    expect(classifyCall('crm.activity.todo.add', { ownerTypeId: 2, ownerId: 1, title: 'Call back', deadline: '2026-01-01T10:00:00' })).toBe('create');
    expect(classifyCall('crm.activity.todo.add', { ownerTypeId: 2, ownerId: 1, providerId: 'CRM_SMS' })).toBe('admin');
    expect(classifyCall('crm.activity.todo.add', { ownerTypeId: 2, fields: { TYPE_ID: 4, DIRECTION: 2 } })).toBe('admin');
    expect(classifyCall('crm.activity.add', {})).toBe('admin');
    expect(classifyBatch({ a: 'crm.activity.add?fields[TYPE_ID]=4&fields[DIRECTION]=2&fields[COMPLETED]=Y' }).effect).toBe('admin');
    expect(classifyBatch({ a: 'crm.activity.add?FIELDS[type_id]=4&FIELDS[direction]=2' }).effect).toBe('admin');
    expect(classifyBatch({ a: 'crm.activity.add?fields[TYPE_ID]=$result[b]&fields[DIRECTION]=1' }).effect).toBe('admin');
    expect(classifyBatch({ a: 'crm.activity.add?fields[TYPE_ID]=2&fields[PROVIDER_ID]=CRM_SMS' }).effect).toBe('admin');
    expect(classifyBatch({ a: 'crm.activity.add?fields[TYPE_ID]=2&fields[SUBJECT]=Call' }).effect).toBe('create');
    expect(classifyBatch({ a: 'crm.activity.todo.add?ownerTypeId=2&ownerId=1&title=x' }).effect).toBe('create');
  });
});

describe('Bitrix24: an update that unlinks, empties or removes values is a delete (finding 6)', () => {
  it.each([
    ['crm.deal.update', { id: 1, fields: { CONTACT_IDS: [] } }, 'delete'],
    ['crm.deal.update', { id: 1, fields: { contact_ids: [5] } }, 'delete'],
    ['crm.lead.update', { id: 1, FIELDS: { CONTACT_ID: 5 } }, 'delete'],
    ['crm.contact.update', { id: 1, fields: { COMPANY_IDS: [2] } }, 'delete'],
    ['crm.item.update', { entityTypeId: 2, id: 1, fields: { contactIds: [] } }, 'delete'],
    ['crm.contact.update', { id: 1, fields: { PHONE: [{ ID: '115', DELETE: 'Y' }] } }, 'delete'],
    ['crm.contact.update', { id: 1, fields: { phone: [{ ID: '115', delete: 'y' }] } }, 'delete'],
    ['crm.contact.update', { id: 1, fields: { EMAIL: [{ ID: '115', VALUE: '' }] } }, 'delete'],
    ['crm.company.update', { id: 1, fields: { WEB: [{ ID: '115' }] } }, 'delete'],
    ['crm.lead.update', { id: 1, fields: { IM: [{ ID: '115', VALUE_TYPE: 'TELEGRAM' }] } }, 'delete'],
    ['crm.deal.update', { id: 1, fields: { UF_CRM_1700000102: [] } }, 'delete'],
    ['crm.contact.update', { id: 1, fields: { PHONE: [{ VALUE: '+12025550101', VALUE_TYPE: 'WORK' }] } }, 'update'],
    ['crm.contact.update', { id: 1, fields: { PHONE: [{ ID: '115', VALUE: '+12025550101' }] } }, 'update'],
    ['crm.contact.update', { id: 1, fields: { PHONE: [{ ID: '115', VALUE: '+12025550101', DELETE: 'N' }] } }, 'update'],
    ['crm.deal.update', { id: 1, fields: { TITLE: '', COMPANY_ID: 3 } }, 'update'],
    ['crm.deal.add', { fields: { CONTACT_IDS: [1, 2], TITLE: 'x' } }, 'create'],
  ] as const)('%s %j → %s', (method, params, effect) => {
    expect(classifyCall(method, params)).toBe(effect);
  });

  it('the same through a batch query', () => {
    expect(classifyBatch({ a: 'crm.deal.update?id=1&fields[CONTACT_IDS]=' }).effect).toBe('delete');
    expect(classifyBatch({ a: 'crm.deal.update?id=1&fields[CONTACT_IDS][]=' }).effect).toBe('delete');
    expect(classifyBatch({ a: 'crm.contact.update?id=1&fields[PHONE][0][ID]=115&fields[PHONE][0][DELETE]=Y' }).effect).toBe('delete');
    expect(classifyBatch({ a: 'crm.contact.update?id=1&fields[PHONE][0][ID]=115&fields[PHONE][0][VALUE]=' }).effect).toBe('delete');
    expect(classifyBatch({ a: 'crm.contact.update?id=1&fields[PHONE][0][ID]=115&fields[PHONE][0][VALUE]=$result[b]' }).effect).toBe('delete');
    expect(classifyBatch({ a: 'crm.deal.update?id=1&fields=$result[b]' }).effect).toBe('delete');
    expect(classifyBatch({ a: 'crm.contact.update?id=1&fields[PHONE][0][VALUE]=%2B12025550101' }).effect).toBe('update');
  });

  it('the HTTP core reads removals the same way: a phone or e-mail removal is a delete there too', () => {
    const o = { core: true };
    expect(classifyCall('crm.contact.update', { id: 1, fields: { PHONE: [{ ID: '115', DELETE: 'Y' }] } }, o)).toBe('delete');
    expect(classifyCall('crm.contact.update', { id: 1, fields: { PHONE: [{ VALUE: '+79123456789', VALUE_TYPE: 'WORK' }] } }, o)).toBe('update');
    expect(classifyCall('crm.deal.update', { id: 1, fields: { CONTACT_IDS: [] } }, o)).toBe('delete');
    expect(classifyCall('crm.deal.update', { id: 1, fields: { PHONE: [{ ID: '115', DELETE: 'Y' }], CONTACT_IDS: [] } }, o)).toBe('delete');
    expect(classifyBatch({ a: 'crm.deal.update?id=1&fields[CONTACT_IDS]=' }, o).effect).toBe('delete');
  });
});
