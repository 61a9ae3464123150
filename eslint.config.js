// @ts-check
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.flatMap((name) => [name, `${name}/*`, `node:${name}`]);

// Workflow code runs in Temporal's deterministic sandbox: it may not touch Node built-ins or
// any library that does I/O, and sees activities only as types.
const workflowSandboxImports = {
  paths: nodeBuiltins.map((name) => ({
    name,
    message: 'Workflow code is sandboxed: do I/O in an activity.',
  })),
  patterns: [
    {
      group: [
        '@temporalio/client',
        '@temporalio/worker',
        '@temporalio/activity',
        '@temporalio/testing',
        'pg',
        'kysely',
        '@electric-sql/*',
        'fastify',
        '@fastify/*',
        'pino',
        '@google/genai',
        '@google-cloud/*',
        '@aws-sdk/*',
        'jose',
        '**/activities',
        '**/activities/*',
        '**/activities.js',
        '**/api/*',
        '**/db/*',
        '**/worker/*',
        '**/config',
        '**/config.js',
      ],
      allowTypeImports: true,
      message: 'Workflow code is sandboxed: import activities and I/O modules as types only.',
    },
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.local/', '.data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Fastify plugins are async by contract whether or not they await.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test runs what describe/it return; awaiting them is not the idiom.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // SQL lives in src/db, one module per table or aggregate; the rest calls those modules.
    files: ['src/**/*.ts'],
    ignores: ['src/db/**', 'src/workflows/**'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['kysely', 'pg', '@electric-sql/*', 'kysely-*'],
              message: 'SQL lives in src/db: add or call a query module there.',
            },
          ],
        },
      ],
    },
  },
  {
    // A kind's declaration is imported by its workflow, so it is held to the same rules.
    files: [
      'src/workflows/**/*.ts',
      'src/kinds/declaration.ts',
      'src/kinds/*/declaration.ts',
      'src/kinds/*/workflow.ts',
    ],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': ['error', workflowSandboxImports],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'Workflow code is sandboxed: pass values in the input.' },
        { name: 'setInterval', message: 'Use sleep() from @temporalio/workflow.' },
      ],
    },
  },
  {
    // The web page runs in browsers, typed by its own tsconfig (DOM types, no Node).
    files: ['src/web/client/**/*.ts'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
