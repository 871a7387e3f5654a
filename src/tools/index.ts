/**
 * The tool registry: every tool crm-mcp has, in the order they are listed to clients (a stable order, grouped
 * by toolset: see toolsets.ts).
 */
import type { AnyTool } from './define.js';
import { getAccount } from './account.js';
import { getCustomFields, getPipelines, listTags, listUsers } from './metadata.js';
import { createLead, getLead, listLeads, searchLeadByContact, updateLead } from './leads.js';
import { createContact, getCompany, getContact, listCompanies, listContacts, updateContact } from './contacts.js';
import { addNote, createTask } from './activity.js';
import { kommoRequest } from './kommo-request.js';
import { bitrixCall, deleteContact, deleteLead } from './bitrix-call.js';
import { getAuditLog } from './audit.js';

export const ALL_TOOLS: AnyTool[] = [
  // core
  getAccount,
  getPipelines,
  searchLeadByContact,
  listLeads,
  getLead,
  listContacts,
  getContact,
  listCompanies,
  getCompany,
  createLead,
  createContact,
  updateLead,
  updateContact,
  deleteLead,
  deleteContact,
  // activity
  addNote,
  createTask,
  // metadata
  getCustomFields,
  listUsers,
  listTags,
  // audit
  getAuditLog,
  // raw
  kommoRequest,
  bitrixCall,
];
