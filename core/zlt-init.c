/* zlt-init.c: library-wide one-time setup */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlayer-tunnel.h"

/**
 * zlt_init:
 *
 * Binds the library's text domain. Safe to call more than once; every program and
 * plugin host calls it before using the library.
 */
void
zlt_init (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      g_once_init_leave (&once, 1);
    }
}
