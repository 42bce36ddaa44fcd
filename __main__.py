from colorize.pipelines.cli import main

main()
