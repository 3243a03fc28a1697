from gisgrid.cli import main

main()
