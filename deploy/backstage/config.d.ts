export interface Config {
  /** paved, the platform's action backend, for the paved:run scaffolder action. */
  paved?: {
    /** paved's address as the Backstage backend reaches it, e.g. http://paved.platform.svc:8080 */
    baseUrl: string;
    /**
     * The API token paved knows Backstage by (api.clients.backstage.token in paved's config).
     * @visibility secret
     */
    token: string;
    /** paved's address as people's browsers reach it, for the run links (default: baseUrl). */
    publicUrl?: string;
  };
}
