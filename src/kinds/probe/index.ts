import type { KindRegistration } from '../registration.js';
import { probeStartRoute } from './api.js';
import { probeKind } from './declaration.js';

export const probeRegistration: KindRegistration<typeof probeKind> = {
  declaration: probeKind,
  startRoute: probeStartRoute,
};
