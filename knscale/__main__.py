from knscale.cli import main

raise SystemExit(main())
