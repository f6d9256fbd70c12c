from mediahooks.cli import main

main()
