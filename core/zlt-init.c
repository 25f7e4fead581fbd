/* zlt-init.c: library-wide one-time setup */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlayer-tunnel.h"

/**
 * zlt_init:
 *
 * Binds the library's text domain and chooses the TLS cipher preference
 * (zlt_tls_init_priority(): set G_TLS_GNUTLS_PRIORITY first to choose another). Safe
 * to call more than once; every program and plugin host calls it before using the
 * library, while it has no other threads.
 *
 * The catalogs are looked up in `$ZLT_LOCALEDIR` when it is set (the build tree's
 * `po/` directory, so the tests can run uninstalled binaries in another language),
 * otherwise in the configured localedir. As the text domain is shared, this binding
 * also holds for a program's own strings.
 */
void
zlt_init (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      const char *localedir = g_getenv ("ZLT_LOCALEDIR");

      if (localedir == NULL || *localedir == '\0')
        localedir = LOCALEDIR;
      bindtextdomain (GETTEXT_PACKAGE, localedir);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      zlt_tls_init_priority ();
      g_once_init_leave (&once, 1);
    }
}
