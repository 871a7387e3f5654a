// ESLint (flat config) with typescript-eslint: the recommended rules plus a few that catch real bugs in
// async server code. Formatting is Prettier's job (`npm run format`), so no style rules here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'test-results/', 'bench/out/', '.mcpb-staging/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    // A CRM is named only in its own wing (src/crms/<kind>/), its emulator (src/sandbox/<kind>/) and the one list
    // of modules (src/crms/registry.ts): general code loops over the registry (docs/architecture.md).
    files: ['src/**/*.ts'],
    ignores: ['src/crms/*/**', 'src/sandbox/**', 'src/crms/registry.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'Literal[value=/^(kommo|bitrix24|amocrm)$/i]',
          message: "A general file names no CRM: put this in the CRM's wing (src/crms/<kind>/) and reach it through the registry.",
        },
        {
          selector: 'TemplateLiteral[expressions.length=0] > TemplateElement[value.raw=/^(kommo|bitrix24|amocrm)$/i]',
          message: "A general file names no CRM: put this in the CRM's wing (src/crms/<kind>/) and reach it through the registry.",
        },
      ],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        performance: 'readonly',
        global: 'readonly',
        structuredClone: 'readonly',
      },
    },
    rules: { '@typescript-eslint/consistent-type-imports': 'off' },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
