/**
 * The raw tools' effect tables, written out by hand (not derived from the rules they check): what each
 * Kommo request and each Bitrix24 method does, in the words of the policy.
 */
import { describe, expect, it } from 'vitest';
import { classifyKommo, normaliseKommoPath } from '../../src/providers/kommo/effects.js';
import { classifyBatch, classifyCall, classifyMethod, normalizeMethod } from '../../src/providers/bitrix24/methods.js';

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
    // An embedded existing contact is a link made by the new lead, not an item-level id.
    expect(classifyKommo('POST', '/api/v4/leads/complex', [{ name: 'x', _embedded: { contacts: [{ id: 3 }] } }])).toBe('create');
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
    ['crm.deal.recurring.expose', 'create'],
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
    ['im.chat.user.add', 'update'],
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
