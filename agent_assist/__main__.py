from agent_assist.cli import main

raise SystemExit(main())
