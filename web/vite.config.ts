import { fileURLToPath } from 'node:url';
import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';
import { WEB_DEV_PORT } from './server/local-site.ts';

const webDir = fileURLToPath(new URL('.', import.meta.url));

/**
 * `npm run web:build` → web/dist, which `npm start` serves. `npm run web:dev` → a dev server with
 * hot reload on port 5174 that takes /config.json from the running local stack's page server, so
 * the page talks to the same Cognito and APIs (the stack allows this origin in CORS).
 */
export default defineConfig({
  root: webDir,
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Amplify's auth and Authenticator are most of the one bundle (about 175 kB gzipped). Every
    // screen needs them first, so splitting would add a round trip without shrinking the first load.
    chunkSizeWarningLimit: 700,
  },
  server: {
    port: WEB_DEV_PORT,
    strictPort: true,
    proxy: {
      '/config.json': `http://127.0.0.1:${process.env.TOLLGATE_PORT_WEB ?? '5173'}`,
    },
  },
});
