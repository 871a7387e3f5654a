/**
 * The layer rules of docs/architecture.md, checked by `npm run lint` (dependency-cruiser). Data flows one way:
 * entry → commands → app → transports → server → config → CRM registry → wing top → tools → services → CRM wings
 * (their core) → infrastructure (http, store, audit, metrics) → policy → domain → util. A module may import its own
 * layer and any layer below it, never one above. A wing has two layers: its core (the CRM's primitives: api,
 * schemas, map, effects, the capability groups, the provider built from them; and the general src/crms/*.ts
 * contract and capability types) sits below the services that run workflows over it; its top (module.ts, its
 * own tools, doctor, sign-in, sandbox and metrics parts) sits above the tool layer, whose definitions its tools
 * use, and below the registry that lists it. The emulators (src/sandbox/) import nothing of the client, and only
 * the registry (and the wing itself) imports a CRM's wing.
 */
/** A wing's top files, by name: what plugs the wing into the application (see above); the rest is its core. */
const TOP_FILE = '(module|doctor[^/]*|sign-in[^/]*|sandbox|metrics|[^/]*-tools?)\\.ts$';

const LAYERS = [
  ['util', '^src/util/'],
  ['domain', '^src/domain/'],
  ['policy', '^src/policy/'],
  ['infrastructure', '^src/(http|store|audit|metrics|events)/|^src/(paths|version)\\.ts$|^src/config/(env-types|env-server|sources)\\.ts$'],
  ['crm wings', `^src/crms/(?!registry\\.ts$)(?![^/]+/${TOP_FILE})`],
  // A feature room sits with the services: over the store and the domain, under the tools' invoke chain.
  ['services', '^src/(services|approvals)/'],
  ['tools', '^src/tools/'],
  ['wing top', `^src/crms/[^/]+/${TOP_FILE}`],
  ['crm registry', '^src/crms/registry\\.ts$'],
  ['config', '^src/config/(?!(env-types|env-server|sources)\\.ts$)'],
  ['server', '^src/server\\.ts$'],
  ['transports', '^src/transports/'],
  ['app', '^src/app\\.ts$'],
  ['commands', '^src/commands/'],
  ['entry', '^src/entry/|^src/(cli|docs)\\.ts$'],
];

/** One rule per layer: it may not import anything of the layers above it. */
const upward = LAYERS.slice(0, -1).map(([name, path], i) => ({
  name: `no-upward-import-from-${name.replace(/ /g, '-')}`,
  comment: `${name} sits below ${LAYERS.slice(i + 1)
    .map(([n]) => n)
    .join(', ')}: it may not import them (docs/architecture.md, "The shape")`,
  severity: 'error',
  from: { path },
  to: {
    path: LAYERS.slice(i + 1)
      .map(([, p]) => `(${p})`)
      .join('|'),
  },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-circular',
      comment: 'No import circles at all, inside a folder either.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'emulators-stand-alone',
      comment: 'The emulators play the CRM: they import nothing of the client, so they cannot be kind to it.',
      severity: 'error',
      from: { path: '^src/sandbox/' },
      to: { path: '^src/', pathNot: '^src/sandbox/' },
    },
    {
      name: 'client-never-imports-emulators',
      comment: 'Only the wings (emulator factory for --sandbox) and the tests reach an emulator.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(sandbox|crms/[^/]+)/' },
      to: { path: '^src/sandbox/' },
    },
    {
      name: 'wing-only-through-registry',
      comment: "A CRM's wing is reached through the registry: no general file imports src/crms/<kind>/.",
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/crms/' },
      to: { path: '^src/crms/[^/]+/' },
    },
    {
      name: 'wings-apart',
      comment: 'One CRM wing never imports another.',
      severity: 'error',
      from: { path: '^src/crms/([^/]+)/' },
      to: { path: '^src/crms/[^/]+/', pathNot: '^src/crms/$1/' },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    parser: 'tsc',
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
  },
};
