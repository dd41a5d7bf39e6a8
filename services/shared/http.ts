import { z } from 'zod';

/** Comma-separated origins, e.g. `https://app.example.com,http://localhost:5173`. */
export const originListSchema = z
  .string()
  .default('')
  .transform((value) =>
    value
      .split(',')
      .map((origin) => origin.trim())
      .filter((origin) => origin.length > 0),
  )
  .pipe(z.array(z.url({ protocol: /^https?$/ })));
