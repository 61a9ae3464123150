import type { JobKindRegistration } from '../registration.js';
import { probeStartRoute } from './api.js';
import { probeKind } from './declaration.js';

export const probeRegistration = {
  declaration: probeKind,
  startRoute: probeStartRoute,
} satisfies JobKindRegistration;
