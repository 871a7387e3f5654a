/** The tool registry: every tool crm-mcp has, in the order they are listed to clients. */
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
  getAccount,
  getPipelines,
  searchLeadByContact,
  listLeads,
  getLead,
  listContacts,
  getContact,
  listCompanies,
  getCompany,
  getCustomFields,
  listUsers,
  listTags,
  getAuditLog,
  createLead,
  createContact,
  addNote,
  createTask,
  updateLead,
  updateContact,
  kommoRequest,
  bitrixCall,
  deleteLead,
  deleteContact,
];
