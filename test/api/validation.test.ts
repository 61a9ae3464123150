// Clients branch on VALIDATION_FAILED and show what `details.issues` names: every refusal with
// that code, wherever it is raised (a route's schema, a multipart form read by hand, a rule a
// service checks), carries the issues, and its message is theirs.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { jobStatuses, terminalStatuses, waitingStatuses } from '../../src/jobs/model.js';
import { jobKindRegistry } from '../../src/kinds/index.js';
import { multipartBody, pngBytes, type FormFile } from '../fixtures/media.js';
import { startHarness, type FormBody, type Harness } from '../support/harness.js';
import { documentedOperations } from '../support/openapi.js';

interface ErrorBody {
  error: {
    code: string;
    message: string;
    details?: { issues?: { field: string; message: string }[] };
  };
}

const png = (field = 'media'): FormFile => ({
  field,
  filename: 'a.png',
  contentType: 'image/png',
  bytes: pngBytes(),
});

describe('VALIDATION_FAILED', () => {
  let h: Harness;
  const user = `validation-${randomUUID().slice(0, 8)}`;

  before(async () => {
    h = await startHarness({
      env: { GEMINI_API_KEY: 'k', VERTEX_PROJECT: 'p', VEO_OUTPUT_GCS_URI: 'gs://b/o/' },
    });
  });
  after(() => h.stop());

  const requests: {
    name: string;
    send: () => Promise<{ statusCode: number; json: <T>() => T }>;
    fields: string[];
  }[] = [
    {
      name: 'a JSON body off its schema',
      send: () => h.user(user).post('/api/probes', { steps: 0 }),
      fields: ['body.steps'],
    },
    {
      name: 'a query parameter off its schema',
      send: () => h.user(user).get('/api/jobs?limit=1000'),
      fields: ['querystring.limit'],
    },
    ...['0x10', '1e1', '', ' ', '16.0', ' 16', '16 ', '\t16', '16\n'].map((limit) => ({
      name: `a page size that is not decimal digits: "${limit}"`,
      send: () => h.user(user).get(`/api/jobs?limit=${encodeURIComponent(limit)}`),
      fields: ['querystring.limit'],
    })),
    {
      name: 'a cursor the API did not issue',
      send: () => h.user(user).get('/api/jobs?cursor=nonsense'),
      fields: ['querystring.cursor'],
    },
    {
      name: 'text the database cannot store',
      send: () => h.user(user).get('/api/jobs?cursor=a%00b'),
      fields: ['querystring.cursor'],
    },
    {
      name: 'a usage range longer than a year',
      send: () => h.user(user).get('/api/usage?from=2020-01-01&to=2026-12-01'),
      fields: ['querystring.from'],
    },
    {
      name: 'a usage range ending before this month, with no start',
      send: () => h.user(user).get('/api/usage?to=2020-01-01'),
      fields: ['querystring.to'],
    },
    {
      name: 'a usage range starting after today, with no end',
      send: () => h.user(user).get(`/api/usage?from=${new Date().getUTCFullYear() + 1}-01-01`),
      fields: ['querystring.from'],
    },
    {
      name: 'a usage range longer than a year up to today',
      send: () => h.user(user).get('/api/usage?from=2020-01-01'),
      fields: ['querystring.from'],
    },
    {
      name: 'a vlog form field off its schema',
      send: () => h.user(user).postForm('/api/vlogs', form({ title: '' }, [png()])),
      fields: ['body.title'],
    },
    {
      name: 'a vlog form field given twice',
      send: () =>
        h.user(user).postForm(
          '/api/vlogs',
          form(
            [
              ['title', 'a'],
              ['title', 'b'],
            ],
            [png()],
          ),
        ),
      fields: ['body.title'],
    },
    {
      name: 'an unknown JSON property',
      send: () => h.user(user).post('/api/probes', { steps: 1, colour: 'red', size: 2 }),
      fields: ['body.colour', 'body.size'],
    },
    {
      name: "an unknown field and an attempt out of range on a retry's request",
      send: () => h.user(user).post('/api/vlogs/some-vlog/retry', { bogusField: true, attempt: 0 }),
      fields: ['body.attempt', 'body.bogusField'],
    },
    {
      name: "a field on a stream link's request",
      send: () => h.user(user).post('/api/ai/jobs/some-job/events/link', { ttl: 3600 }),
      fields: ['body.ttl'],
    },
    {
      name: "a body that is no object on a retry's request",
      send: () => h.user(user).post('/api/ai/jobs/some-job/retry', [1]),
      fields: ['body'],
    },
    {
      name: 'an unknown query parameter',
      send: () => h.user(user).get('/api/jobs?colour=red'),
      fields: ['querystring.colour'],
    },
    {
      name: 'an unknown vlog form field',
      send: () => h.user(user).postForm('/api/vlogs', form({ title: 'x', foo: 'bar' }, [png()])),
      fields: ['body.foo'],
    },
    {
      name: 'vlog media sent as text',
      send: () =>
        h.user(user).postForm('/api/vlogs', form({ title: 'x', media: 'photo' }, [png()])),
      fields: ['body.media'],
    },
    {
      name: 'a vlog file name with a control character',
      send: () =>
        h
          .user(user)
          .postForm(
            '/api/vlogs',
            form({ title: 'x' }, [{ ...png(), filename: 'a\u001b[2Jb.png' }]),
          ),
      fields: ['media file name'],
    },
    {
      name: 'a vlog file name that a direction override makes read otherwise',
      send: () =>
        h
          .user(user)
          .postForm(
            '/api/vlogs',
            form({ title: 'x' }, [{ ...png(), filename: 'holiday\u202Egnp.exe' }]),
          ),
      fields: ['media file name'],
    },
    {
      name: 'a vlog file name with a Unicode line separator',
      send: () =>
        h
          .user(user)
          .postForm('/api/vlogs', form({ title: 'x' }, [{ ...png(), filename: 'a\u2028b.png' }])),
      fields: ['media file name'],
    },
    {
      name: 'a vlog file name longer than a file system keeps',
      send: () =>
        h
          .user(user)
          .postForm(
            '/api/vlogs',
            form({ title: 'x' }, [{ ...png(), filename: `${'a'.repeat(300)}.png` }]),
          ),
      fields: ['media file name'],
    },
    {
      name: 'a vlog form part without a name',
      send: () =>
        h.user(user).postForm('/api/vlogs', form({ title: 'x' }, [{ ...png(), field: '' }])),
      fields: ['body'],
    },
    {
      name: 'a vlog file under another field name',
      send: () => h.user(user).postForm('/api/vlogs', form({ title: 'x' }, [png('photo')])),
      fields: ['body.photo'],
    },
  ];

  function form(fields: Parameters<typeof multipartBody>[0], files: FormFile[]): FormBody {
    return multipartBody(fields, files);
  }

  for (const request of requests) {
    it(`names each field in details.issues and the message: ${request.name}`, async () => {
      const response = await request.send();
      const { error } = response.json<ErrorBody>();
      assert.equal(response.statusCode, 400, JSON.stringify(error));
      assert.equal(error.code, 'VALIDATION_FAILED');
      const issues = error.details?.issues;
      assert.ok(issues, `details.issues: ${JSON.stringify(error)}`);
      assert.deepEqual(
        issues.map((issue) => issue.field),
        request.fields,
      );
      for (const issue of issues) assert.ok(issue.message.length > 0, issue.field);
      assert.equal(
        error.message,
        issues.map((issue) => `${issue.field}: ${issue.message}`).join('; '),
      );
    });
  }

  // Each unknown key is named: thousands of them would come back twice each, an answer many
  // times the request's size.
  it('lists the first 20 issues and says how many more there are', async () => {
    const body = Object.fromEntries(Array.from({ length: 5_000 }, (_, index) => [`k${index}`, 1]));
    const response = await h.user(user).post('/api/probes', { steps: 1, ...body });
    const { error } = response.json<ErrorBody>();
    assert.equal(response.statusCode, 400);
    assert.deepEqual(
      error.details?.issues?.map((issue) => issue.field),
      Array.from({ length: 20 }, (_, index) => `body.k${index}`),
    );
    assert.match(error.message, /^body\.k0: unknown field[^]*; and 4980 more$/);
    assert.ok(response.body.length < 3_000, `${response.body.length} bytes`);
  });

  // A key or id of the client's own is shown back: a direction override in it would make the
  // answer read otherwise than it is, as it would in a value (which is refused).
  it("escapes what it shows back of the client's own keys and ids", async () => {
    const key = await h.user(user).post('/api/probes', { steps: 1, 'invoice\u202Efdp.exe': 1 });
    const { error } = key.json<ErrorBody>();
    assert.deepEqual(
      error.details?.issues?.map((issue) => issue.field),
      ['body.invoice\\u202efdp.exe'],
    );
    assert.ok(!key.body.includes('\u202E'), 'the override itself is shown back');
    const long = await h.user(user).post('/api/probes', { steps: 1, ['k'.repeat(1_000)]: 1 });
    const [issue] = long.json<ErrorBody>().error.details?.issues ?? [];
    assert.equal(issue?.field, `body.${'k'.repeat(123)}…`);
    for (const path of ['/api/jobs/', '/api/vlogs/', '/api/ai/jobs/']) {
      const missing = await h.user(user).get(`${path}abc${encodeURIComponent('\u202E')}gnp.exe`);
      assert.equal(missing.statusCode, 404, path);
      assert.match(missing.json<ErrorBody>().error.message, /with id abc\\u202egnp\.exe$/);
    }
  });
});

describe('list filters', () => {
  let h: Harness;
  const user = `filters-${randomUUID().slice(0, 8)}`;
  const from = '2026-12-01T00:00:00Z';
  const earlier = '2026-11-30T00:00:00Z';

  before(async () => {
    h = await startHarness();
  });
  after(() => h.stop());

  async function refusal(url: string, admin = false) {
    const response = await (admin ? h.admin(user) : h.user(user)).get(url);
    const { error } = response.json<ErrorBody>();
    return {
      status: response.statusCode,
      code: error?.code,
      fields: error?.details?.issues?.map((issue) => issue.field),
    };
  }

  it('takes the first instant PostgreSQL stores, year 1, and the last of year 9999', async () => {
    for (const url of [
      '/api/jobs?createdFrom=0001-01-01T00:00:00Z',
      '/api/usage?from=0001-01-01&to=0001-01-01',
      '/api/admin/failure-groups?from=0001-01-01T00:00:00Z',
      '/api/jobs?createdFrom=9999-12-31T23:59:59.999Z',
      '/api/vlogs?createdTo=9999-12-31T23:59:59Z',
      '/api/usage?from=9999-12-31&to=9999-12-31',
      '/api/admin/failure-groups?to=9999-12-31T23:59:59Z',
    ]) {
      const response = await h.admin(user).get(url);
      assert.equal(response.statusCode, 200, `${url}: ${response.body}`);
    }
  });

  it('takes every kind, job type and status that exists on /api/jobs', async () => {
    for (const { declaration } of jobKindRegistry) {
      for (const type of declaration.jobTypes) {
        const url = `/api/jobs?kind=${declaration.kind}&type=${type}`;
        assert.equal((await h.user(user).get(url)).statusCode, 200, url);
      }
    }
    for (const status of jobStatuses) {
      assert.equal((await h.user(user).get(`/api/jobs?status=${status}`)).statusCode, 200, status);
    }
    // With a kind, each status a job of it can be in: waiting, in one of its stages, or ended.
    for (const { declaration } of jobKindRegistry) {
      const staged = declaration.stages.map((stage) => stage.status);
      for (const status of [...waitingStatuses, ...staged, ...terminalStatuses]) {
        const url = `/api/jobs?kind=${declaration.kind}&status=${status}`;
        assert.equal((await h.user(user).get(url)).statusCode, 200, url);
      }
    }
  });

  for (const [url, field] of [
    ['/api/jobs?status=bogus', 'querystring.status'],
    ['/api/jobs?kind=bogus', 'querystring.kind'],
    ['/api/jobs?type=bogus', 'querystring.type'],
    // Of another kind than the one asked for: no job can match (the kind's own list refuses it).
    ['/api/jobs?kind=probe&type=VLOG', 'querystring.type'],
    ['/api/jobs?kind=vlog&status=processing', 'querystring.status'],
    ['/api/jobs?kind=ai&status=analyzing', 'querystring.status'],
    // A type names its kind as surely.
    ['/api/jobs?type=VLOG&status=processing', 'querystring.status'],
    ['/api/jobs?type=PROBE&status=analyzing', 'querystring.status'],
    [`/api/jobs?createdFrom=${from}&createdTo=${earlier}`, 'querystring.createdTo'],
    [`/api/jobs?createdFrom=${from}&createdTo=${from}`, 'querystring.createdTo'],
    [`/api/vlogs?createdFrom=${from}&createdTo=${earlier}`, 'querystring.createdTo'],
    [`/api/ai/jobs?createdFrom=${from}&createdTo=${earlier}`, 'querystring.createdTo'],
    ['/api/admin/failure-groups?kind=bogus', 'querystring.kind'],
    // PostgreSQL has no year 0: these reached it and answered 500.
    ['/api/jobs?createdFrom=0000-01-01T00:00:00Z', 'querystring.createdFrom'],
    ['/api/vlogs?createdTo=0000-12-31T00:00:00Z', 'querystring.createdTo'],
    ['/api/ai/jobs?createdFrom=0001-01-01T00:30:00%2B01:00', 'querystring.createdFrom'],
    ['/api/usage?from=0000-12-31&to=0001-01-01', 'querystring.from'],
    ['/api/admin/failure-groups?from=0000-01-01T00:00:00Z', 'querystring.from'],
    // Nor after year 9999 (node-postgres writes year 10000 in a form PostgreSQL does not read).
    ['/api/jobs?createdFrom=9999-12-31T23:59:59-14:00', 'querystring.createdFrom'],
    ['/api/vlogs?createdTo=9999-12-31T23:59:59-00:01', 'querystring.createdTo'],
    ['/api/ai/jobs?createdFrom=9999-12-31T23:59:59-14:00', 'querystring.createdFrom'],
    ['/api/admin/failure-groups?to=9999-12-31T23:59:59-14:00', 'querystring.to'],
    // Not an instant at all: told once, not also that it is before year 1.
    ['/api/jobs?createdFrom=2026-13-01T00:00:00Z', 'querystring.createdFrom'],
    ['/api/usage?from=0000-13-01', 'querystring.from'],
    [
      `/api/jobs?cursor=${Buffer.from(JSON.stringify({ createdAt: '0000-01-01T00:00:00Z', id: 'x' })).toString('base64url')}`,
      'querystring.cursor',
    ],
  ] as const) {
    it(`refuses ${url} naming ${field}`, async () => {
      const answer = await refusal(url, url.startsWith('/api/admin'));
      assert.deepEqual(answer, { status: 400, code: 'VALIDATION_FAILED', fields: [field] });
    });
  }
  // A parameter a route would ignore (a misspelt `?lmit=`, `?live=true` where no live view is)
  // is refused, so the client learns it asked for something the route does not do.
  it('refuses a query parameter no GET route names, on every one', async () => {
    const reads = (await documentedOperations(h.api.app)).filter(
      ({ method, path }) => method === 'GET' && path.startsWith('/api/'),
    );
    assert.ok(reads.length > 10, `${reads.length} reads`);
    const wrong: string[] = [];
    for (const { url, path } of reads) {
      const response = await h.admin('operator').get(`${url}?bogus=1`);
      const body = response.json<ErrorBody>();
      if (
        response.statusCode !== 400 ||
        body.error.code !== 'VALIDATION_FAILED' ||
        body.error.details?.issues?.[0]?.field !== 'querystring.bogus'
      ) {
        wrong.push(`GET ${path}: ${response.statusCode} ${response.body.slice(0, 120)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});
