import '@aws-amplify/ui-vue/styles.css';
// The page's own global sheets, in cascade order; each component styles the rest itself (scoped).
import './styles/tokens.css';
import './styles/amplify.css';
import './styles/base.css';
import './styles/layout.css';
import './styles/controls.css';
import './styles/status.css';
import './styles/tables.css';
import './styles/palette.css';
import { createApp } from 'vue';
import App from './App.vue';

createApp(App).mount('#app');
