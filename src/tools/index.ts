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
import { addNote, completeTask, createTask, listNotes, listTasks } from './activity.js';
import { getAuditLog } from './audit.js';
import { moveLead } from './move-lead.js';
import { logCall } from './calls.js';
import { acceptIncomingLead, declineIncomingLead, listIncomingLeads } from './incoming.js';
import { createCompany, linkContactToCompany, updateCompany } from './companies.js';
import { getRecordHistory } from './events.js';
import { getImportStatus, importLeads } from './import.js';
import { listChanges } from './changes.js';

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
  moveLead,
  updateContact,
  // activity
  listNotes,
  listTasks,
  addNote,
  createTask,
  completeTask,
  // metadata
  getCustomFields,
  listUsers,
  listTags,
  // audit
  getAuditLog,
  // companies
  createCompany,
  updateCompany,
  linkContactToCompany,
  // calls
  logCall,
  // incoming
  listIncomingLeads,
  acceptIncomingLead,
  declineIncomingLead,
  // import
  importLeads,
  getImportStatus,
  // events
  listChanges,
  getRecordHistory,
];
