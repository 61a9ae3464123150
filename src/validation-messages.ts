import { z } from 'zod';

// Zod words a missing field as "Invalid input: expected string, received undefined", which reads
// as a wrong value; a person sent nothing, so say what to do. Set once for every schema, the
// API's and the configuration's alike (a schema's own message still wins).
z.config({
  customError: (issue) =>
    issue.code === 'invalid_type' && issue.input === undefined ? 'required' : undefined,
});
