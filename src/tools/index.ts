/**
 * The general tools: those every CRM may have, registered wherever their required capabilities are declared,
 * in the order they are listed to clients (a stable order, grouped by toolset: see toolsets.ts). A CRM's own
 * tools (its raw API) come with its module (contract.ts `tools`); the full list, general and modules' tools
 * merged by toolset, is the registry's `ALL_TOOLS` (crms/registry.ts), which sits above both.
 */
import type { AnyTool } from './define.js';
import { getAccountTool } from './account.js';
import { getCustomFields, getPipelines, listTags, listUsers } from './metadata.js';
import { createLead, getLead, listLeads, searchLeadByContact, updateLead } from './leads.js';
import { createContact, getCompany, getContact, listCompanies, listContacts, updateContact } from './contacts.js';
import { addNote, createTask } from './activity.js';
import { getAuditLog } from './audit.js';

/** The general tools for a server whose registry has these CRMs (get_account's output names them). */
export const generalTools = (crmKinds: readonly string[]): AnyTool[] => [
  // core
  getAccountTool(crmKinds),
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
  // activity
  addNote,
  createTask,
  // metadata
  getCustomFields,
  listUsers,
  listTags,
  // audit
  getAuditLog,
];
